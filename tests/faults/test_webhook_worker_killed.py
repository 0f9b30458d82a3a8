"""Fault: the worker delivering a CRM webhook is SIGKILLed while the receiver holds the POST.

The claim was committed before the POST; the killed worker never records the answer, so
the row stays ``sending`` until its claim lapses. The replay (the test plays the scheduler,
sending the real ``replay_webhooks`` actor) gives it back and a restarted worker delivers it
again: at least once, with the same event id for the CRM to de-duplicate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, select

from bench import harness
from portalflow.config import Settings
from portalflow.models import (
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEventType,
    make_engine,
    make_session_factory,
)
from portalflow.pipelines.crm_webhooks import endpoints, outbox
from portalflow.workers.webhook_actors import replay_webhooks

from ..factories import make_org
from ..webhook_receiver import Receiver, running_receiver
from . import fleet

SCHEDULER_PERIOD_SECONDS = 0.5
TIMEOUT_SECONDS = 2.0  # the lease is then 2 x 2 + 5 = 9 s


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def test_a_worker_killed_mid_delivery_loses_no_event(
    engine: Engine,
    database_url: str,
    redis_server: harness.PrivateRedis,
    queue: RedisBroker,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    key = Fernet.generate_key().decode()
    hooks = {
        "webhook_key": key,
        "webhook_allowed_networks": "127.0.0.0/8",
        "webhook_timeout_seconds": TIMEOUT_SECONDS,
        "replay_grace_seconds": 1,
    }
    settings = Settings(var_dir=tmp_path / "var", webhook_key=key, broker_url=redis_server.url,
                        webhook_allowed_networks=("127.0.0.0/8",))  # fmt: skip
    env = harness.worker_env(database_url, redis_server.url, tmp_path / "var", **hooks)
    factory = make_session_factory(engine)
    with factory() as session:
        org = make_org(session)
        created = endpoints.create_endpoint(session, settings, org.id, receiver.url + "/crm")
        session.commit()
        receiver.secrets.append(created.secret)
        org_id = org.id

    workers = harness.Workers(
        env, processes=1, threads=2, queues=("webhooks", "maintenance"), log_path=tmp_path / "w.log"
    )
    group = fleet.Group(workers)
    group.start()
    try:
        group.wait_ready()
        receiver.hold = threading.Event()
        with factory() as session:  # the commit enqueues the delivery
            event = outbox.Event(WebhookEventType.LICENCE_ALERT, org_id, {"kind": "overage"})
            outbox.emit(session, [event])
            session.commit()
        assert receiver.holding.wait(fleet.HANG_GUARD_SECONDS), "the POST never arrived"
        workers.kill()  # mid-POST: the claim is committed, the answer never recorded
        receiver.held[0].set()
        with factory() as session:
            [row] = session.scalars(select(WebhookDelivery)).all()
            assert (row.status, row.attempts) == (WebhookDeliveryStatus.SENDING, 1)
            event_id = row.event_id

        group.start()
        group.wait_ready()

        def delivered() -> bool:
            replay_webhooks.send()  # the test plays the scheduler
            time.sleep(SCHEDULER_PERIOD_SECONDS)
            with factory() as session:
                return session.scalars(select(WebhookDelivery.status)).one() == (
                    WebhookDeliveryStatus.DELIVERED
                )

        fleet.wait_until(delivered, "the replayed delivery")
    finally:
        workers.stop()
    with factory() as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.attempts, row.last_failure_code) == (2, None)
    # At least once: the killed attempt may have reached the CRM too; both carry one id.
    posts = [r for r in receiver.received if r.verified]
    assert len(posts) == 2 and {r.headers["Portalflow-Event-Id"] for r in posts} == {event_id}
