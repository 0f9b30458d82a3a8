"""The access benchmark still runs and prints its JSON summary (figures are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..servers import require_server

ROOT = Path(__file__).resolve().parents[2]


def test_access_page_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    result = subprocess.run(
        [sys.executable, "-m", "bench.access_page", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["records"] == 50_000
    assert {
        "lookup_and_value_p95_ms",
        "lookup_or_criteria_p95_ms",
        "public_by_field_p95_ms",
    } <= set(summary)
    assert any("Contact_Name" in statement for statement in summary["indexes"])
