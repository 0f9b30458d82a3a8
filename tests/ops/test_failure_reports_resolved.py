"""Failure reports tell the present: failures resolved since are counted apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import CrmRecord, Invitation, InvitationStatus, PortalUser, PortalUserStatus
from portalflow.pipelines.ops.failure_reports import FailureFilter, failure_report
from portalflow.pipelines.tenancy import api_keys
from portalflow.web.app import create_app

from ..cli_runner import run
from ..factories import make_inviter, make_org, make_record, start_and_expand

TOKEN = "s3cret-admin-token"


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    """Run 1 refuses boss (own domain), ghost (missing) and locked (approval); then boss's
    address is fixed and boss invited again, and locked's user becomes confirmed."""
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "boss", email="boss@zylker.com")
    make_record(session, org, "locked", approval_locked=True)
    session.commit()
    first, _ = start_and_expand(session, org, inviter, ["boss", "ghost", "locked"])
    session.commit()
    session.execute(
        update(CrmRecord)
        .where(CrmRecord.crm_id == "boss")
        .values(email="boss@customer.example.org")
    )
    session.commit()
    start_and_expand(session, org, inviter, ["boss"])  # queued: invited again
    # locked became a portal user some other way and confirmed (e.g. a later run).
    record = session.scalar(select(CrmRecord).where(CrmRecord.crm_id == "locked"))
    assert record is not None
    session.add(
        PortalUser(
            org_id=org.id,
            record_id=record.id,
            user_type_id=first_type(session, first.run_id),
            status=PortalUserStatus.CONFIRMED,
            email=record.email,
        )
    )
    session.commit()
    return {"org": org, "run_id": first.run_id}


def first_type(session: Session, run_id: int) -> int:
    invitation = session.scalars(select(Invitation).where(Invitation.bulk_run_id == run_id)).first()
    assert invitation is not None
    return invitation.user_type_id


def test_failures_resolved_since_are_left_out_and_counted_apart(
    session: Session, world: dict[str, Any]
) -> None:
    report = failure_report(session, FailureFilter(org_id=world["org"].id))

    assert report["total_failed"] == 1 and report["resolved"] == 2
    assert report["by_reason"] == {"record_missing": 1}
    assert [row["crm_id"] for row in report["invitees"]] == ["ghost"]
    # The run's own report tells the present too.
    run_report = failure_report(
        session, FailureFilter(org_id=world["org"].id, bulk_run_id=world["run_id"])
    )
    assert run_report["total_failed"] == 1 and run_report["resolved"] == 2


def test_include_resolved_lists_them_with_why(session: Session, world: dict[str, Any]) -> None:
    report = failure_report(session, FailureFilter(org_id=world["org"].id, include_resolved=True))

    assert report["total_failed"] == 3 and report["resolved"] == 2
    resolved = {row["crm_id"]: row["resolved"] for row in report["invitees"]}
    assert resolved == {"boss": "invited_again", "locked": "confirmed", "ghost": None}


def test_a_later_failure_does_not_resolve_an_earlier_one(
    session: Session, world: dict[str, Any]
) -> None:
    session.execute(
        update(Invitation)
        .where(Invitation.crm_id == "boss", Invitation.status == InvitationStatus.QUEUED)
        .values(status=InvitationStatus.FAILED, failure_code="technical_failure")
    )
    session.commit()
    report = failure_report(session, FailureFilter(org_id=world["org"].id, include_resolved=True))
    boss = [row for row in report["invitees"] if row["crm_id"] == "boss"]
    assert [row["resolved"] for row in boss] == [None, None]
    assert report["resolved"] == 1  # locked only


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    with TestClient(create_app(Settings(database_url=url, admin_token=TOKEN))) as client:
        yield client


def test_http_failures_tell_the_present(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    path = f"/orgs/{world['org'].id}/failures"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    now = client.get(path, headers=headers)
    assert now.status_code == 200, now.text
    assert (now.json()["total_failed"], now.json()["resolved"]) == (1, 2)
    everything = client.get(path, params={"include_resolved": "true"}, headers=headers).json()
    assert everything["total_failed"] == 3
    assert {row["resolved"] for row in everything["invitees"]} == {
        None,
        "invited_again",
        "confirmed",
    }
    missing = client.get("/orgs/999/failures", headers=headers)
    assert missing.status_code == 404

    # The org's own admin API (its API key) reads the same report, the same way.
    _key, plaintext = api_keys.create_key(session, world["org"].id, "crm")
    session.commit()
    org_headers = {"Authorization": f"Bearer {plaintext}"}
    own = client.get("/admin/failures", headers=org_headers).json()
    assert (own["total_failed"], own["resolved"]) == (1, 2)
    own = client.get(
        "/admin/failures", params={"include_resolved": "true"}, headers=org_headers
    ).json()
    assert own["total_failed"] == 3


def test_cli_include_resolved(cli_env: Any, tmp_path: Any) -> None:
    assert run("db", "upgrade")[0] == 0
    assert run("orgs", "create", "--name", "Acme", "--domain", "acme.com",
               "--country", "US")[0] == 0  # fmt: skip
    assert run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
               "--modules", "Contacts")[0] == 0  # fmt: skip
    records = tmp_path / "records.jsonl"
    records.write_text(
        '{"crm_id": "A2", "module": "Contacts", "first_name": "Bo", "email": "bo@acme.com"}\n',
        encoding="utf-8",
    )
    assert run("records", "import", str(records), "--org", "1")[0] == 0
    assert run("invite", "--org", "1", "--user-type", "1", "--inviter", "1", "-r", "A2")[0] == 1
    records.write_text('{"crm_id": "A2", "email": "bo@customer.example.org"}\n', encoding="utf-8")
    assert run("records", "import", str(records), "--org", "1")[0] == 0
    code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1", "-r", "A2")
    assert code == 0, out

    code, out = run("failures", "--org", "1")
    assert code == 0 and "0 failed invitees" in out and "--include-resolved" in out, out
    code, out = run("failures", "--org", "1", "--include-resolved", "--json")
    assert code == 0, out
    [row] = json.loads(out)["invitees"]
    assert (row["crm_id"], row["reason"], row["resolved"]) == (
        "A2",
        "company_domain",
        "invited_again",
    )
    code, out = run("failures", "--org", "1", "--include-resolved")
    assert code == 0 and "resolved since" in out and "invited_again" in out, out
