"""The actors through a real Dramatiq worker on the RabbitMQ broker, against PostgreSQL.

The Redis worker tests of ``test_workers`` run here again: this module's ``redis_broker``
fixture (which the shared ``worker`` fixture uses) is a RabbitMQ broker instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Worker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, func, select

from portalflow.config import Settings, SettingsError
from portalflow.models import BulkRun, BulkRunStatus, Invitation, make_session_factory
from portalflow.pipelines.ops import reports
from portalflow.workers import actors, broker, enqueue

from ..conftest import wait_for, wait_for_run
from ..servers import require_server
from .test_workers import (  # noqa: F401 (collected here: the same tests on RabbitMQ)
    QUEUE,
    start_run,
    test_bulk_invite_through_redis_worker,
    test_redelivered_messages_send_once,
    test_sms_invitations_through_redis_worker,
    world,
)

RABBITMQ_URL = os.environ.get(
    "PORTALFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"
)


def _rabbitmq_broker() -> RabbitmqBroker:
    made = broker.make_broker(Settings(broker_url=RABBITMQ_URL))
    assert isinstance(made, RabbitmqBroker)
    return made


@pytest.fixture
def rabbitmq_broker() -> Iterator[RabbitmqBroker]:
    """A RabbitMQ broker with our actors declared on it, its queues purged before and after."""
    require_server("RabbitMQ", "127.0.0.1", 5672)
    rabbit = broker.install(_rabbitmq_broker())
    assert isinstance(rabbit, RabbitmqBroker)
    rabbit.flush_all()
    yield rabbit
    rabbit.flush_all()
    rabbit.close()


@pytest.fixture
def redis_broker(rabbitmq_broker: RabbitmqBroker) -> RabbitmqBroker:
    """Overrides the Redis broker for this module, so ``worker`` runs on RabbitMQ."""
    return rabbitmq_broker


def test_bulk_invite_through_rabbitmq_worker(
    worker: Worker,
    rabbitmq_broker: RabbitmqBroker,
    world: dict[str, Any],  # noqa: F811
    pg_engine: Engine,
    outbox_dir: Path,
) -> None:
    assert worker.broker is rabbitmq_broker
    factory = make_session_factory(pg_engine)
    with factory() as session:
        ids = [f"w{n}" for n in range(30)] + ["binned", "nobody"]
        started = start_run(session, world, ids, chunk=7)
    assert enqueue.enqueue_chunks(started.chunk_ids) == 5

    wait_for_run(factory, started.run_id)
    with factory() as session:
        report = reports.bulk_run_report(session, started.run_id)
    assert (report["sent"], report["failed"], report["queued"]) == (30, 2, 0)
    assert report["failed_by_reason"] == {"in_recycle_bin": 1, "record_missing": 1}
    assert len(list(outbox_dir.glob("*.eml"))) == 30
    rabbitmq_broker.join(QUEUE, timeout=30_000)
    assert rabbitmq_broker.get_queue_message_counts(QUEUE) == (0, 0, 0)


def test_malformed_messages_go_to_the_dead_letter_queue(
    worker: Worker,
    rabbitmq_broker: RabbitmqBroker,
    world: dict[str, Any],  # noqa: F811
    pg_engine: Engine,
    outbox_dir: Path,
) -> None:
    for bad in ("abc", -1, None, 99_999):
        actors.bulk_invite.send(bad)
    actors.dispatch_invitation.send("1; DROP TABLE invitations")
    # Not retried: each goes straight to the dead-letter queue (QUEUE.XQ).
    wait_for(lambda: rabbitmq_broker.get_queue_message_counts(QUEUE) == (0, 0, 5))
    with make_session_factory(pg_engine)() as session:
        assert session.scalar(select(func.count()).select_from(Invitation)) == 0
        assert session.scalar(select(func.count()).select_from(BulkRun)) == 0
    assert list(outbox_dir.glob("*.eml")) == []


def test_messages_survive_a_lost_connection(
    rabbitmq_broker: RabbitmqBroker,
    world: dict[str, Any],  # noqa: F811
    worker_settings: Settings,
    pg_engine: Engine,
    outbox_dir: Path,
) -> None:
    """Published with confirms, a message waits in its durable queue for a later consumer."""
    factory = make_session_factory(pg_engine)
    with factory() as session:
        started = start_run(session, world, [f"w{n}" for n in range(5)], chunk=5)
    publisher = broker.install(_rabbitmq_broker())
    assert isinstance(publisher, RabbitmqBroker)
    enqueue.enqueue_chunks(started.chunk_ids)
    # The publisher's connections all go, as when the web process that enqueued restarts.
    publisher.close()
    assert all(connection.is_closed for connection in publisher.connections)

    broker.install(rabbitmq_broker)  # new connections: another process, later
    assert rabbitmq_broker.get_queue_message_counts(QUEUE) == (1, 0, 0)
    running = Worker(rabbitmq_broker, worker_threads=2, worker_timeout=100)
    running.start()
    try:

        def completed() -> bool:
            with factory() as session:
                run = session.get_one(BulkRun, started.run_id)
                return run.status == BulkRunStatus.COMPLETED

        wait_for(completed)
    finally:
        running.stop()
    assert len(list(outbox_dir.glob("*.eml"))) == 5


def test_rabbitmq_queues_are_durable(rabbitmq_broker: RabbitmqBroker) -> None:
    """Re-declaring a queue as non-durable is refused: RabbitMQ holds it as durable."""
    import pika.exceptions

    rabbitmq_broker.declare_queue(QUEUE, ensure=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="durable"):
        rabbitmq_broker.channel.queue_declare(queue=QUEUE, durable=False)
    del rabbitmq_broker.channel


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", StubBroker),
        # Dramatiq's Redis broker with a short idle poll on the real-time queues.
        ("redis://127.0.0.1:6379/0", broker.PollingRedisBroker),
        ("rediss://cache.example.com:6380/0", broker.PollingRedisBroker),
        ("amqp://guest:guest@127.0.0.1:5672/%2F", RabbitmqBroker),
        ("amqps://user:pass@mq.example.com:5671/portalflow", RabbitmqBroker),
    ],
)
def test_make_broker_picks_the_class_for_each_scheme(url: str, expected: type) -> None:
    made = broker.make_broker(Settings(broker_url=url))
    assert type(made) is expected
    if isinstance(made, RabbitmqBroker):
        assert made.confirm_delivery is True


@pytest.mark.parametrize(
    "url", ["http://user:secret@host/", "kafka://host:9092", "sqs://queue", "host:6379"]
)
def test_make_broker_refuses_other_schemes(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        broker.make_broker(Settings(broker_url=url))
    message = str(raised.value)
    assert "PORTALFLOW_BROKER_URL" in message
    for scheme in ("redis://", "rediss://", "amqp://", "amqps://"):
        assert scheme in message
    assert "secret" not in message
