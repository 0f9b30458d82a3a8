"""Fault 3: PostgreSQL is restarted mid-run, dropping every connection for a while."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from bench import harness
from portalflow.models import Invitation, make_engine, make_session_factory

from ..smtp_server import SmtpServer
from . import fleet, tally, world

RECORDS = 1000
CHUNK_SIZE = 100
PROCESSES, THREADS = 2, 4
RESTART_AFTER_SHARE = 0.25
DOWN_SECONDS = 2.0
# Longer than a batch held through the outage: a live claim must never look dead.
LEASE_SECONDS = 12
REPLAY_GRACE_SECONDS = 4
SCHEDULER_PERIOD_SECONDS = 2.0


def test_postgres_restarted_mid_run_loses_nothing(
    database_url: str,
    pg_cluster: harness.PrivatePostgres,
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
    log = tmp_path / "workers.log"
    with (
        fleet.group(env, log, PROCESSES, THREADS),
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
        fleet.wait_until(lambda: sent() >= RESTART_AFTER_SHARE * len(seeded.eligible), "progress")
        sent_at_restart = sent()
        emails_at_restart = len(mail_sink.messages)
        dropped = _connections(factory)
        pg_cluster.restart(down_seconds=DOWN_SECONDS)
        fleet.wait_until(partial(fleet.run_finished, factory, run.run_id), "the end of the run")

    delivered = tally.email_deliveries((m.rcpt_tos, m.content) for m in mail_sink.messages)
    with factory() as session:
        result = tally.count(session, seeded, delivered)
        again = session.scalars(select(Invitation.id).where(Invitation.attempts > 1))
        claimed_again = len(again.all())
    engine.dispose()
    worker_errors = log.read_text(errors="replace").count("OperationalError")
    tally.report(
        "postgres restarted",
        records=RECORDS,
        eligible=len(seeded.eligible),
        down_seconds=DOWN_SECONDS,
        sent_at_restart=sent_at_restart,
        emails_at_restart=emails_at_restart,
        connections_dropped=dropped,
        worker_database_errors=worker_errors,
        emails=len(delivered),
        lost=len(result.lost),
        duplicates=result.duplicate_count,
        dead_claims_completed_by_receipt=replays.completed,
        dead_claims_sent_again=replays.requeued,
        rows_claimed_again=claimed_again,
        failed_recovery_passes=replays.failed_passes,
        seconds=round(time.monotonic() - began, 1),
    )
    assert dropped > 0
    tally.assert_each_got_one(result, seeded)


def _connections(factory: sessionmaker[Session]) -> int:
    """Other sessions on the run's database: the workers' connections a restart drops."""
    with factory() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(session.scalar(query) or 0)
