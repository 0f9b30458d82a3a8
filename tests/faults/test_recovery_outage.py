"""Fault 8: the database is down when a recovery pass starts; the pass is retried, not lost."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select

from bench import harness
from portalflow.config import Settings
from portalflow.models import ProviderEvent, ProviderEventStatus, utcnow
from portalflow.workers import actors, recovery_actors, runtime

from .fleet import wait_until
from .rig import Rig


@pytest.fixture
def maintenance_worker(rig: Rig, queue: RedisBroker) -> Iterator[Worker]:
    """A real Dramatiq worker on the private Redis and PostgreSQL, in this process."""
    var_dir = rig.tmp_path / "var"
    runtime.configure(
        Settings(var_dir=var_dir, database_url=rig.database_url, replay_grace_seconds=1)
    )
    running = Worker(
        queue,
        queues={actors.MAINTENANCE_QUEUE, actors.EVENTS_QUEUE},
        worker_threads=1,
        worker_timeout=100,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        runtime.configure(Settings(var_dir=var_dir))  # off the private database


def test_a_recovery_pass_outlives_a_database_outage(
    rig: Rig,
    pg_cluster: harness.PrivatePostgres,
    maintenance_worker: Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with rig.factory() as session:
        # A provider event whose message was lost: only a recovery pass hands it on.
        event = ProviderEvent(
            provider="ses",
            dedupe_key="ses:lost-1",
            payload={
                "Type": "Notification",
                "MessageId": "lost-1",
                "message": {"eventType": "Delivery", "mail": {"messageId": "not-ours"}},
            },
            status=ProviderEventStatus.RECEIVED,
            received_at=utcnow() - timedelta(minutes=10),
        )
        session.add(event)
        session.commit()
        event_id = event.id

    caplog.set_level(logging.WARNING, logger="dramatiq")
    pg_cluster.stop()
    try:
        recovery_actors.recover_stuck_work.send()
        wait_until(
            lambda: any("recover_stuck_work" in record.getMessage() for record in caplog.records),
            "the recovery pass to fail on the stopped database",
        )
    finally:
        pg_cluster.start()

    def handed_on() -> bool:
        with rig.factory() as session:
            status = session.scalar(
                select(ProviderEvent.status).where(ProviderEvent.id == event_id)
            )
        return status != ProviderEventStatus.RECEIVED

    wait_until(handed_on, "the retried recovery pass to hand the lost event on")
