"""invitation.requested end to end: POST /events, Redis, real workers, the outbox, PostgreSQL."""

from __future__ import annotations

import email
import threading
from collections.abc import Iterator
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Message, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from portalflow.config import Settings
from portalflow.events import publish
from portalflow.models import (
    BulkChunk,
    BulkRun,
    CrmEvent,
    CrmEventStatus,
    Invitation,
    InvitationStatus,
    make_session_factory,
)
from portalflow.pipelines.crm import intake
from portalflow.pipelines.tenancy import api_keys
from portalflow.web.app import create_app
from portalflow.workers.actors import INVITATIONS_QUEUE
from portalflow.workers.address_actors import CRM_EVENTS_QUEUE, handle_crm_event

from ..conftest import wait_for, wait_for_run
from ..factories import client_portal, make_inviter, make_org, make_record

# One more than a chunk (bulk.start_bulk_run's chunk_size), so the event makes two chunks.
RECORDS = 501

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class Enqueued(Middleware):
    """Writes down every message the broker enqueues: (actor, args)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    def after_enqueue(self, broker: Any, message: Message, delay: Any) -> None:
        with self._lock:
            self.messages.append((message.actor_name, tuple(message.args)))

    def of(self, actor_name: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [args for name, args in self.messages if name == actor_name]


@pytest.fixture
def enqueued(redis_broker: RedisBroker) -> Enqueued:
    recorder = Enqueued()
    redis_broker.add_middleware(recorder)
    return recorder


@pytest.fixture
def crm(pg_engine: Engine) -> dict[str, Any]:
    """An org with RECORDS contact records and an API key."""
    with make_session_factory(pg_engine)() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        for n in range(RECORDS):
            make_record(session, org, f"C-{n}")
        _, key = api_keys.create_key(session, org.id, "crm")
        session.commit()
        return {
            "org_id": org.id,
            "headers": {"Authorization": f"Bearer {key}"},
            "data": {
                "user_type_id": client_portal(session, org).id,
                "inviter_id": inviter.id,
                "record_ids": [f"C-{n}" for n in range(RECORDS)],
            },
        }


@pytest.fixture
def client(pg_database_url: str) -> Iterator[TestClient]:
    """The real app; its POST /events sends to the global broker (the test's Redis)."""
    with TestClient(create_app(Settings(database_url=pg_database_url))) as client:
        yield client


def drain(broker: RedisBroker) -> None:
    for queue in (CRM_EVENTS_QUEUE, INVITATIONS_QUEUE):
        broker.join(queue, timeout=60_000)


def recipients(outbox_dir: Path) -> list[str]:
    """The address of every email in the file outbox, sorted."""
    return sorted(
        parseaddr(email.message_from_bytes(path.read_bytes())["To"])[1]
        for path in outbox_dir.glob("*.eml")
    )


def test_invitation_requested_sends_one_invitation_per_record_once(
    worker: Worker,
    redis_broker: RedisBroker,
    enqueued: Enqueued,
    client: TestClient,
    crm: dict[str, Any],
    pg_engine: Engine,
    pg_database_url: str,
    outbox_dir: Path,
) -> None:
    factory = make_session_factory(pg_engine)
    body = {"id": "crm-evt-1", "type": "invitation.requested", "data": crm["data"]}
    answer = client.post("/events", json=body, headers=crm["headers"])
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["event_id"]

    def processed() -> bool:
        with factory() as session:
            return session.get_one(CrmEvent, event_id).status == CrmEventStatus.PROCESSED

    wait_for(processed)
    with factory() as session:
        run_id = intake.bulk_run_of(session.get_one(CrmEvent, event_id))
        assert run_id is not None
        chunk_ids = list(
            session.scalars(
                select(BulkChunk.id).where(BulkChunk.bulk_run_id == run_id).order_by(BulkChunk.seq)
            )
        )
    wait_for_run(factory, run_id)
    drain(redis_broker)

    assert enqueued.of("handle_crm_event") == [(event_id,)]
    assert len(chunk_ids) == 2
    assert sorted(enqueued.of("bulk_invite")) == [(chunk_id,) for chunk_id in chunk_ids]
    expected = sorted(f"C-{n}@customer.example.org" for n in range(RECORDS))
    assert recipients(outbox_dir) == expected
    with factory() as session:
        run = session.get_one(BulkRun, run_id)
        assert (run.requested, run.sent, run.failed, run.queued) == (RECORDS, RECORDS, 0, 0)
        rows = session.execute(
            select(Invitation.crm_id, Invitation.status, Invitation.bulk_run_id)
        ).all()
    assert sorted(crm_id for crm_id, _, _ in rows) == sorted(crm["data"]["record_ids"])
    assert {(status, run) for _, status, run in rows} == {(InvitationStatus.SENT, run_id)}

    # The same idempotency key again, over HTTP and through publish, and the same message
    # delivered twice: the first result comes back and nothing is written or sent again.
    again = client.post("/events", json=body, headers=crm["headers"])
    assert again.status_code == 200
    assert again.json() == {
        "event_id": event_id,
        "status": "processed",
        "result_code": None,
        "detail": f"bulk_run={run_id}",
    }
    republished = publish(
        org_id=crm["org_id"],
        event_id="crm-evt-1",
        type="invitation.requested",
        data=crm["data"],
        database_url=pg_database_url,
    )
    assert republished == (event_id, False)
    handle_crm_event.send(event_id)
    drain(redis_broker)

    assert enqueued.of("handle_crm_event") == [(event_id,), (event_id,)]
    assert len(enqueued.of("bulk_invite")) == 2
    assert enqueued.of("dispatch_invitation") == []
    assert recipients(outbox_dir) == expected
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CrmEvent)) == 1
        assert session.scalar(select(func.count()).select_from(BulkRun)) == 1
        assert session.scalar(select(func.count()).select_from(Invitation)) == RECORDS
