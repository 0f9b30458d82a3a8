"""The dispatch and event benchmarks still run and print their JSON summary (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..servers import require_binary, require_server

ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str) -> dict[str, Any]:
    """Run ``python -m bench.<module> --quick`` from the repository root; its JSON summary."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dispatch_throughput_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    require_binary("redis-server")
    require_binary("smtp-sink", "/usr/sbin/smtp-sink")
    summary = run_quick("dispatch_throughput")
    assert {
        "noop_per_s",
        "bare_per_s",
        "bare_threaded_per_s",
        "bulk_per_s",
        "bulk_over_noop",
        "bulk_over_bare",
        "bulk_over_bare_threaded",
        "bulk_chunk_size",
        "bulk_cpu_ms",
        "bulk_cpu_ms_workers",
        "bulk_cpu_ms_postgres",
        "bulk_sql_per_invitation",
    } <= set(summary)
    count = summary["invitations"]
    assert count == 300
    sent = ("noop_done", "bare_sent", "bare_threaded_sent", "bulk_sent")
    assert [summary[key] for key in sent] == [count] * len(sent)
    assert summary["bulk_chunk_size"] >= 1
    statements = summary["bulk_sql_per_invitation"]
    assert isinstance(statements, int | float) and statements > 0, statements


def test_event_latency_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    require_binary("redis-server")
    summary = run_quick("event_latency")
    assert {"p50_ms", "p95_ms", "p99_ms", "max_ms", "http_p50_ms"} <= set(summary)
    assert summary["events"] == 20
    assert all(isinstance(summary[key], float) for key in ("p50_ms", "p95_ms", "p99_ms"))
