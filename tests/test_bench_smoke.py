"""Benchmarks still run and print their JSON summary (figures are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


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
