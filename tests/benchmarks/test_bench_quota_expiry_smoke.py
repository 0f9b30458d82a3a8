"""The quota and expiry-sweep benchmarks still run and print their JSON summary (no times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..servers import require_binary, require_server

ROOT = Path(__file__).resolve().parents[2]


def run_bench(module: str, timeout: float) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_quota_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    require_binary("redis-server")

    summary = run_bench("bench.quota", timeout=300)

    assert {
        "achieved_per_s",
        "achieved_over_quota",
        "refused_429",
        "busiest_second",
        "chunk_size",
        "wall_s",
    } <= set(summary)
    assert (summary["invitations"], summary["processes"], summary["threads"]) == (150, 2, 8)
    assert summary["chunk_size"] == 10  # 150 invitations over 2 x 8 threads
    # Every invitation ends sent: a 429 is temporary and retried, never a failure.
    assert (summary["sent"], summary["failed"]) == (150, 0)


def test_expiry_sweep_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)

    summary = run_bench("bench.expiry_sweep", timeout=300)

    assert {
        "sweep_s",
        "rows_per_transaction",
        "longest_transaction_s",
        "longest_claim_unexpired_s",
        "longest_claim_about_to_expire_s",
    } <= set(summary)
    assert (summary["invitations"], summary["due"], summary["expired"]) == (20_000, 4_000, 4_000)
    assert (summary["left_due"], summary["rerun_expired"]) == (0, 0)
    assert summary["transactions"] >= 1
    assert summary["rows_per_transaction"] <= summary["batch_size"]
    # The claim of a queued row always succeeds (then is rolled back); a due row is never
    # queued, so it is never claimed.
    assert summary["claimed_unexpired"] == summary["claims_unexpired"] > 0
    assert summary["claimed_about_to_expire"] == 0
