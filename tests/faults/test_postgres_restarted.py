"""Fault 3: PostgreSQL is restarted mid-run, dropping every connection for a while."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from bench import harness
from portalflow.models import Invitation

from . import fleet, tally
from .rig import Rig

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
    rig: Rig, pg_cluster: harness.PrivatePostgres
) -> None:
    seeded = rig.seed(RECORDS)
    env = rig.smtp_env(send_lease_seconds=LEASE_SECONDS, replay_grace_seconds=REPLAY_GRACE_SECONDS)
    log = rig.tmp_path / "workers.log"
    with (
        fleet.group(env, log, PROCESSES, THREADS),
        rig.scheduler(
            SCHEDULER_PERIOD_SECONDS, lease=LEASE_SECONDS, grace=REPLAY_GRACE_SECONDS
        ) as replays,
    ):
        run_id = rig.start_run(CHUNK_SIZE)
        sent_at_restart = rig.wait_sent_share(run_id, RESTART_AFTER_SHARE)
        emails_at_restart = len(rig.mail_sink.messages)
        dropped = _connections(rig.factory)
        pg_cluster.restart(down_seconds=DOWN_SECONDS)
        rig.wait_finished(run_id)

    delivered = rig.smtp_deliveries()
    with rig.factory() as session:
        result = rig.count(session, delivered)
        again = session.scalars(select(Invitation.id).where(Invitation.attempts > 1))
        claimed_again = len(again.all())
    worker_errors = log.read_text(errors="replace").count("OperationalError")
    rig.report(
        "postgres restarted",
        result,
        down_seconds=DOWN_SECONDS,
        sent_at_restart=sent_at_restart,
        emails_at_restart=emails_at_restart,
        connections_dropped=dropped,
        worker_database_errors=worker_errors,
        emails=len(delivered),
        dead_claims_completed_by_receipt=replays.completed,
        dead_claims_sent_again=replays.requeued,
        rows_claimed_again=claimed_again,
        failed_recovery_passes=replays.failed_passes,
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
