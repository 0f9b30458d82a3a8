"""Idempotency-Key on POST /admin/*, and a reused CRM event id with other content (issue 17)."""
# ruff: noqa: F811  (the fixtures of test_intake are imported, then used by name)

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portalflow.models import BulkRun, IdempotencyKey, Org, utcnow
from portalflow.pipelines.ops import retention

from ..crm.test_intake import Sent, Tenant, acme, client, sent, zylker  # noqa: F401
from ..factories import make_record


def runs(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(BulkRun)) or 0


def invite_body(tenant: Tenant, *crm_ids: str) -> dict[str, object]:
    return {
        "user_type_id": tenant.user_type_id,
        "inviter_id": tenant.inviter_id,
        "record_ids": list(crm_ids),
    }


def test_the_same_key_and_body_get_the_first_answer_and_start_nothing(
    client: TestClient, session: Session, zylker: Tenant, sent: Sent
) -> None:
    make_record(session, session.get_one(Org, zylker.org_id), "C-1")
    session.commit()
    headers = {**zylker.headers, "Idempotency-Key": "run-42"}
    first = client.post("/admin/invitations", json=invite_body(zylker, "C-1"), headers=headers)
    again = client.post("/admin/invitations", json=invite_body(zylker, "C-1"), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert runs(session) == 1 and len(sent.invite_chunks) == first.json()["chunks"]


def test_the_same_key_with_another_body_is_a_409(
    client: TestClient, session: Session, zylker: Tenant
) -> None:
    headers = {**zylker.headers, "Idempotency-Key": "run-43"}
    client.post("/admin/invitations", json=invite_body(zylker, "C-1"), headers=headers)
    other = client.post("/admin/invitations", json=invite_body(zylker, "C-2"), headers=headers)
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert runs(session) == 1


def test_keys_are_per_org_and_expire(
    client: TestClient, session: Session, zylker: Tenant, acme: Tenant
) -> None:
    key = {"Idempotency-Key": "shared"}
    assert (
        client.post(
            "/admin/invitations", json=invite_body(zylker, "C-1"), headers={**zylker.headers, **key}
        ).status_code
        == 202
    )
    assert (
        client.post(
            "/admin/invitations", json=invite_body(acme, "C-9"), headers={**acme.headers, **key}
        ).status_code
        == 202
    )
    assert runs(session) == 2
    session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    session.commit()
    assert retention.delete_old_idempotency_keys(session) == 2
    assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_reused_event_id_with_another_payload_is_a_409(
    client: TestClient, session: Session, zylker: Tenant, sent: Sent
) -> None:
    event = {
        "id": "e-7",
        "type": "record.email_changed",
        "data": {"record_id": "C-1", "email": "a@zylker.com"},
    }
    assert client.post("/events", json=event, headers=zylker.headers).status_code == 202
    assert client.post("/events", json=event, headers=zylker.headers).status_code == 200
    changed = {**event, "data": {"record_id": "C-1", "email": "b@zylker.com"}}
    answer = client.post("/events", json=changed, headers=zylker.headers)
    assert answer.status_code == 409 and answer.json()["code"] == "event_id_reused"
    assert len(sent.events) == 1
