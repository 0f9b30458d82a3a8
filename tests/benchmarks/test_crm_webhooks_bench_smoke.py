"""The webhook outbox benchmark still runs and prints its JSON summary (no timing asserts)."""

from __future__ import annotations

from ..servers import require_binary, require_server
from .test_bench_dispatch_smoke import run_quick


def test_webhook_outbox_bench_runs_quick() -> None:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    require_binary("redis-server")
    require_binary("smtp-sink", "/usr/sbin/smtp-sink")
    summary = run_quick("webhook_outbox")
    count = summary["invitations"]
    assert summary["without_sent"] == summary["with_sent"] == count
    # Two rows per invitation with an endpoint (queued, sent), none without.
    assert summary["with_outbox_rows_per_invitation"] == 2.0
    assert summary["without_outbox_rows_per_invitation"] == 0.0
    assert {"cpu_with_over_without", "wall_with_over_without"} <= set(summary)
