"""Fault 2: Redis is flushed mid-run; it keeps nothing on disk, so every message is gone."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from dramatiq.brokers.redis import RedisBroker

from bench import harness
from portalflow.models import make_engine, make_session_factory

from ..smtp_server import SmtpServer
from . import fleet, tally, world

RECORDS = 1000
# Small chunks: more messages than the workers prefetch, so the flush finds some waiting.
CHUNK_SIZE = 25
PROCESSES, THREADS = 2, 4
# Flush once the workers have sent this share of the run.
FLUSH_AFTER_SHARE = 0.25
LEASE_SECONDS = 15
REPLAY_GRACE_SECONDS = 4
SCHEDULER_PERIOD_SECONDS = 2.0


def test_redis_flushed_mid_run_loses_nothing(
    database_url: str,
    redis_server: harness.PrivateRedis,
    queue: RedisBroker,
    mail_sink: SmtpServer,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    seeded = world.seed(database_url, RECORDS)
    env = fleet.worker_env(
        database_url,
        redis_server.url,
        tmp_path / "var",
        **fleet.smtp(mail_sink.port),
        send_lease_seconds=LEASE_SECONDS,
        replay_grace_seconds=REPLAY_GRACE_SECONDS,
    )
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with (
        fleet.group(env, tmp_path / "workers.log", PROCESSES, THREADS),
        fleet.playing_scheduler(
            database_url,
            SCHEDULER_PERIOD_SECONDS,
            lease=LEASE_SECONDS,
            grace=REPLAY_GRACE_SECONDS,
            max_attempts=5,
        ) as replays,
    ):
        with factory() as session:
            run = world.start_run(session, seeded, CHUNK_SIZE)
        sent = partial(fleet.sent_so_far, factory, run.run_id)
        fleet.wait_until(lambda: sent() >= FLUSH_AFTER_SHARE * len(seeded.eligible), "progress")
        sent_at_flush = sent()
        waiting = queue.client.llen(f"{queue.namespace}:{world.QUEUE}")
        redis_server.flushall()
        fleet.wait_until(partial(fleet.run_finished, factory, run.run_id), "the end of the run")

    delivered = tally.email_deliveries((m.rcpt_tos, m.content) for m in mail_sink.messages)
    with factory() as session:
        result = tally.count(session, seeded, delivered)
    engine.dispose()
    tally.report(
        "redis flushed",
        records=RECORDS,
        eligible=len(seeded.eligible),
        sent_at_flush=sent_at_flush,
        messages_waiting_at_flush=waiting,
        emails=len(delivered),
        lost=len(result.lost),
        duplicates=result.duplicate_count,
        chunks_replayed=replays.chunks,
        seconds=round(time.monotonic() - began, 1),
    )
    assert waiting > 0
    assert replays.chunks > 0
    tally.assert_each_got_one(result, seeded)
