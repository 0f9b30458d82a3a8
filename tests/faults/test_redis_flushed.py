"""Fault 2: Redis is flushed mid-run; it keeps nothing on disk, so every message is gone."""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker

from . import fleet, tally, world
from .rig import Rig

RECORDS = 1000
# Small chunks: more messages than the workers prefetch, so the flush finds some waiting.
CHUNK_SIZE = 25
PROCESSES, THREADS = 2, 4
# Flush once the workers have sent this share of the run.
FLUSH_AFTER_SHARE = 0.25
LEASE_SECONDS = 15
REPLAY_GRACE_SECONDS = 4
SCHEDULER_PERIOD_SECONDS = 2.0


def test_redis_flushed_mid_run_loses_nothing(rig: Rig, queue: RedisBroker) -> None:
    seeded = rig.seed(RECORDS)
    env = rig.smtp_env(send_lease_seconds=LEASE_SECONDS, replay_grace_seconds=REPLAY_GRACE_SECONDS)
    with (
        fleet.group(env, rig.tmp_path / "workers.log", PROCESSES, THREADS),
        rig.scheduler(
            SCHEDULER_PERIOD_SECONDS, lease=LEASE_SECONDS, grace=REPLAY_GRACE_SECONDS
        ) as replays,
    ):
        run_id = rig.start_run(CHUNK_SIZE)
        sent_at_flush = rig.wait_sent_share(run_id, FLUSH_AFTER_SHARE)
        waiting = queue.client.llen(f"{queue.namespace}:{world.QUEUE}")
        rig.redis_server.flushall()
        rig.wait_finished(run_id)

    delivered = rig.smtp_deliveries()
    with rig.factory() as session:
        result = rig.count(session, delivered)
    rig.report(
        "redis flushed",
        result,
        sent_at_flush=sent_at_flush,
        messages_waiting_at_flush=waiting,
        emails=len(delivered),
        chunks_replayed=replays.chunks,
    )
    assert waiting > 0
    assert replays.chunks > 0
    tally.assert_each_got_one(result, seeded)
