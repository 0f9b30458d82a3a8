"""CRM event intake and the admin API over HTTP: per-org keys, validation, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import BulkRun, CrmEvent, CrmEventKind, CrmEventStatus, CrmRecord, utcnow
from portalflow.pipelines.crm import crm_events, intake
from portalflow.pipelines.ops import recovery
from portalflow.pipelines.tenancy import api_keys
from portalflow.web.app import create_app

from ..factories import client_portal, make_inviter, make_org, make_record


@dataclass
class Sent:
    events: list[int] = field(default_factory=list)
    invite_chunks: list[int] = field(default_factory=list)
    action_chunks: list[int] = field(default_factory=list)


@dataclass
class Tenant:
    org_id: int
    key: str
    user_type_id: int
    inviter_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def tenant(session: Session, name: str, domain: str) -> Tenant:
    org = make_org(session, name=name, company_domain=domain)
    inviter = make_inviter(session, org, email=f"russell@{domain}")
    _, key = api_keys.create_key(session, org.id, "crm")
    tenant = Tenant(org.id, key, client_portal(session, org).id, inviter.id)
    session.commit()
    return tenant


@pytest.fixture
def zylker(session: Session) -> Tenant:
    return tenant(session, "Zylker", "zylker.com")


@pytest.fixture
def acme(session: Session) -> Tenant:
    return tenant(session, "Acme", "acme.com")


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def client(session: Session, sent: Sent) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url))
    app.state.enqueue_crm_event = sent.events.append
    app.state.enqueue_invite_chunks = sent.invite_chunks.extend
    app.state.enqueue_action_chunks = sent.action_chunks.extend
    with TestClient(app) as client:
        yield client


def event_count(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(CrmEvent)) or 0


def post_event(
    session: Session, client: TestClient, who: Tenant, event_id: str, kind: str, data: Any
) -> Any:
    session.commit()  # end the test's transaction: SQLite takes a write lock per transaction
    return client.post(
        "/events", json={"id": event_id, "type": kind, "data": data}, headers=who.headers
    )


def test_a_key_is_needed_and_a_revoked_key_is_refused(
    client: TestClient, session: Session, zylker: Tenant
) -> None:
    body = {"id": "e1", "type": "record.deleted", "data": {"record_id": "C-1"}}
    assert client.post("/events", json=body).status_code == 401
    wrong = {"Authorization": "Bearer pf_nope_nope"}
    assert client.post("/events", json=body, headers=wrong).status_code == 401
    prefix = zylker.key.split("_")[1]
    api_keys.revoke(session, zylker.org_id, prefix)
    session.commit()
    assert client.post("/events", json=body, headers=zylker.headers).status_code == 401
    assert api_keys.authenticate(session, zylker.key) is None
    assert event_count(session) == 0


def test_a_bad_event_is_422_naming_the_field_and_nothing_is_stored(
    client: TestClient, session: Session, sent: Sent, zylker: Tenant
) -> None:
    answer = post_event(
        session,
        client,
        zylker,
        "e1",
        "invitation.requested",
        {"inviter_id": 1, "record_ids": ["a"]},
    )
    assert answer.status_code == 422
    locations = [error["loc"] for error in answer.json()["errors"]]
    assert any(loc[-1] == "user_type_id" for loc in locations), locations

    too_many = post_event(
        session,
        client,
        zylker,
        "e2",
        "invitation.requested",
        {"user_type_id": 1, "inviter_id": 1, "record_ids": [f"C{i}" for i in range(5001)]},
    )
    assert too_many.status_code == 422
    assert any(error["loc"][-1] == "record_ids" for error in too_many.json()["errors"])

    unknown = post_event(session, client, zylker, "e3", "record.exploded", {})
    assert unknown.status_code == 422
    assert event_count(session) == 0 and sent.events == []


def test_the_same_event_id_is_processed_once(
    client: TestClient, session: Session, sent: Sent, zylker: Tenant
) -> None:
    data = {"record_id": "C-1", "module": "Contacts", "email": "sage@customer.example.org"}
    first = post_event(session, client, zylker, "evt-1", "record.upserted", data)
    assert first.status_code == 202
    assert first.json()["status"] == "received"
    event_id = first.json()["event_id"]
    assert sent.events == [event_id]

    intake.handle_record_upserted(session, event_id)
    session.commit()

    again = post_event(session, client, zylker, "evt-1", "record.upserted", data)
    assert again.status_code == 200
    assert again.json() == {
        "event_id": event_id,
        "status": "processed",
        "result_code": None,
        "detail": "created",
    }
    assert sent.events == [event_id]  # not enqueued again
    other = post_event(
        session, client, zylker, "evt-1", "record.upserted", {**data, "email": "x@y.org"}
    )
    assert other.status_code == 409 and other.json()["code"] == "event_id_reused"
    assert sent.events == [event_id]
    assert event_count(session) == 1


def test_record_upserted_deleted_and_restored_through_the_real_pipelines(
    client: TestClient, session: Session, sent: Sent, zylker: Tenant
) -> None:
    from portalflow.workers.address_actors import HANDLERS

    data = {
        "record_id": "C-7",
        "module": "Contacts",
        "first_name": "Sage",
        "email": "sage@customer.example.org",
        "consent_given": True,
        "fields": {"tier": "gold"},
    }
    created = post_event(session, client, zylker, "u1", "record.upserted", data).json()["event_id"]
    HANDLERS[CrmEventKind.RECORD_UPSERTED](session, created, None)
    session.commit()
    record = session.scalar(select(CrmRecord).where(CrmRecord.crm_id == "C-7"))
    assert record is not None and record.org_id == zylker.org_id
    assert record.email == "sage@customer.example.org" and record.consent_given
    assert record.fields == {"tier": "gold"}

    deleted = post_event(session, client, zylker, "d1", "record.deleted", {"record_id": "C-7"})
    HANDLERS[CrmEventKind.RECORD_DELETED](session, deleted.json()["event_id"], None)
    session.commit()
    session.refresh(record)
    assert record.deleted
    assert HANDLERS[CrmEventKind.RECORD_DELETED](session, deleted.json()["event_id"], None) == []

    restored = post_event(session, client, zylker, "r1", "record.restored", {"record_id": "C-7"})
    HANDLERS[CrmEventKind.RECORD_RESTORED](session, restored.json()["event_id"], None)
    session.commit()
    session.refresh(record)
    assert not record.deleted

    missing = post_event(session, client, zylker, "d2", "record.deleted", {"record_id": "nobody"})
    HANDLERS[CrmEventKind.RECORD_DELETED](session, missing.json()["event_id"], None)
    event = crm_events.get_event(session, missing.json()["event_id"])
    assert event.status == CrmEventStatus.FAILED and event.result_code == "record_missing"


def test_invitation_requested_creates_a_bulk_run(
    client: TestClient, session: Session, zylker: Tenant
) -> None:
    from portalflow.workers.address_actors import CHUNK_HANDLERS

    make_record(session, crm_events.orgs.get_org(session, zylker.org_id), "C-1")
    session.commit()
    data = {
        "user_type_id": zylker.user_type_id,
        "inviter_id": zylker.inviter_id,
        "record_ids": ["C-1"],
    }
    event_id = post_event(session, client, zylker, "inv-1", "invitation.requested", data).json()[
        "event_id"
    ]
    chunk_ids = CHUNK_HANDLERS[CrmEventKind.INVITATION_REQUESTED](session, event_id, None)
    session.commit()
    assert len(chunk_ids) == 1
    event = crm_events.get_event(session, event_id)
    assert event.status == CrmEventStatus.PROCESSED
    run = session.get_one(BulkRun, intake.bulk_run_of(event))
    assert run.org_id == zylker.org_id and run.requested == 1
    # Delivered again: nothing new is written or returned.
    assert intake.handle_invitation_requested(session, event_id) == []
    assert session.scalar(select(func.count()).select_from(BulkRun)) == 1


def test_an_event_whose_message_was_lost_is_found_by_the_replay(
    client: TestClient, session: Session, sent: Sent, zylker: Tenant
) -> None:
    event_id = post_event(
        session, client, zylker, "lost", "record.deleted", {"record_id": "C-1"}
    ).json()["event_id"]
    sent.events.clear()  # the message never reached a worker (e.g. a Redis flush)
    grace = timedelta(minutes=5)
    assert recovery.recover(session, utcnow(), max_attempts=3, grace=grace).crm_event_ids == []
    later = utcnow() + timedelta(minutes=6)
    found = recovery.recover(session, later, max_attempts=3, grace=grace)
    assert found.crm_event_ids == [event_id]
    intake.handle_record_deleted(session, event_id)
    session.commit()
    assert recovery.recover(session, later, max_attempts=3, grace=grace).crm_event_ids == []


def test_another_orgs_key_cannot_read_or_use_its_data(
    client: TestClient, session: Session, sent: Sent, zylker: Tenant, acme: Tenant
) -> None:
    org = crm_events.orgs.get_org(session, zylker.org_id)
    make_record(session, org, "C-1", email="c1@customer.example.org")
    session.commit()
    body = {
        "user_type_id": zylker.user_type_id,
        "inviter_id": zylker.inviter_id,
        "record_ids": ["C-1"],
    }
    started = client.post("/admin/invitations", json=body, headers=zylker.headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert len(sent.invite_chunks) == 1

    assert client.get(f"/admin/bulk-runs/{run_id}", headers=zylker.headers).status_code == 200
    assert client.get(f"/admin/bulk-runs/{run_id}", headers=acme.headers).status_code == 404
    failures = client.get("/admin/failures", params={"bulk_run_id": run_id}, headers=acme.headers)
    assert failures.status_code == 404
    own = client.get("/admin/failures", params={"bulk_run_id": run_id}, headers=zylker.headers)
    assert own.status_code == 200
    # Acme cannot invite into Zylker's user type either; nothing is written or enqueued.
    assert client.post("/admin/invitations", json=body, headers=acme.headers).status_code == 404
    assert len(sent.invite_chunks) == 1
    # The same event id in two orgs is two events: each org has its own.
    one = post_event(session, client, zylker, "same", "record.deleted", {"record_id": "C-1"})
    two = post_event(session, client, acme, "same", "record.deleted", {"record_id": "C-1"})
    assert one.status_code == two.status_code == 202
    intake.handle_record_deleted(session, two.json()["event_id"])
    session.commit()
    assert crm_events.get_event(session, two.json()["event_id"]).result_code == "record_missing"


def test_admin_bodies_are_validated(client: TestClient, zylker: Tenant) -> None:
    both = {"user_type_id": 1, "inviter_id": 1, "crm_ids": ["a"], "all": True}
    answer = client.post("/admin/invitations", json=both, headers=zylker.headers)
    assert answer.status_code == 422
    reinvite = {"user_type_id": zylker.user_type_id, "actor_id": zylker.inviter_id}
    nobody = client.post("/admin/users/reinvite", json=reinvite, headers=zylker.headers)
    assert nobody.status_code == 422 and "no portal users" in nobody.json()["detail"]
    transfer = {"to_user_type_id": zylker.user_type_id, "user_ids": [12345]}
    moved = client.post("/admin/users/transfer", json=transfer, headers=zylker.headers)
    assert moved.status_code == 200 and moved.json()["moved"] == []


def test_the_openapi_schema_builds(client: TestClient) -> None:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    schema = answer.json()
    assert "/events" in schema["paths"] and "/admin/bulk-runs/{run_id}" in schema["paths"]
    assert "/admin/failures" in schema["paths"]
