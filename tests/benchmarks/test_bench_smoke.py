"""Benchmarks still run and print their JSON summary (figures are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..servers import require_server

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_message_build_bench_runs_quick() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "message_build.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"render_us", "build_ours_en_us", "build_ours_ja_us"} <= set(summary)


def test_reconcile_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    result = subprocess.run(
        [sys.executable, str(BENCH / "reconcile.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {
        "users",
        "orgs",
        "reconcile_s",
        "peak_rss_mb",
        "reconcile_rss_delta_mb",
        "reports_written",
    } <= set(summary)
    assert (summary["users"], summary["orgs"], summary["reports_written"]) == (20_000, 20, 20)
