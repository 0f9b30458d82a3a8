"""Failure reports: who failed and why, by reason, outcome and user type; and the CLI."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    OUTCOME_DESCRIPTIONS,
    EmailKind,
    Invitation,
    InvitationStatus,
    Org,
    OutcomeClass,
    PortalUserType,
    ReasonCode,
    SendFailureCode,
    describe_failure,
    make_engine,
)
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.invitations.bulk import expand_chunk, start_bulk_run
from portalflow.pipelines.ops.failure_reports import (
    CSV_FIELDS,
    FailureFilter,
    failure_report,
    rows_for_csv,
)
from portalflow.pipelines.tenancy import orgs

from ..cli_runner import run
from ..factories import client_portal, make_inviter, make_org, make_record
from ..sql import counting_statements

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def add_invitation(
    session: Session, org: Org, user_type: PortalUserType, crm_id: str, **values: Any
) -> Invitation:
    """A direct invitation row (the dispatch and outcome pipelines are tested elsewhere)."""
    invitation = Invitation(
        org_id=org.id,
        user_type_id=user_type.id,
        crm_id=crm_id,
        kind=EmailKind.ACCEPT_INVITATION,
        address=f"{crm_id.lower()}@customer.example.org",
        **values,
    )
    session.add(invitation)
    session.flush()
    return invitation


def failed(code: str, detail: str | None = None) -> dict[str, Any]:
    return {"status": InvitationStatus.FAILED, "failure_code": code, "failure_detail": detail}


def after_send(outcome: OutcomeClass, code: str, raw: str, at: datetime) -> dict[str, Any]:
    return {
        "status": InvitationStatus.SENT,
        "attempts": 1,
        "sent_at": at - timedelta(minutes=5),
        "outcome_class": outcome,
        "outcome_code": code,
        "outcome_raw": raw,
        "outcome_at": at,
    }


@dataclass
class World:
    org: Org
    customers: PortalUserType
    vendors: PortalUserType
    run_id: int


@pytest.fixture
def world(session: Session) -> World:
    """A run of 4 (2 refused, 2 queued) for Customers, and direct rows of every kind."""
    org = make_org(session)
    inviter = make_inviter(session, org)
    customers = client_portal(session, org)
    vendors = orgs.add_user_type(session, org.id, name="Vendors", module="Vendors")
    make_record(session, org, "C1")
    make_record(session, org, "C2")
    make_record(session, org, "C3", email="c3@zylker.com")  # the org's own domain
    started = start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=customers.id,
        inviter_id=inviter.id,
        crm_ids=["C1", "C2", "C3", "GONE"],
    )
    for chunk_id in started.chunk_ids:
        expand_chunk(session, chunk_id)

    add_invitation(
        session,
        org,
        customers,
        "T1",
        attempts=5,
        **failed(SendFailureCode.TECHNICAL_FAILURE, "ses_throttled: rate exceeded"),
    )
    add_invitation(
        session,
        org,
        vendors,
        "V1",
        **after_send(OutcomeClass.PERMANENT, "bounce_no_email", "Permanent/NoEmail", NOW),
    )
    add_invitation(
        session,
        org,
        vendors,
        "V2",
        **after_send(OutcomeClass.COMPLAINED, "complaint", "abuse", NOW + timedelta(minutes=1)),
    )
    add_invitation(
        session,
        org,
        vendors,
        "V3",
        **after_send(OutcomeClass.DELIVERED, "delivered", "Delivery", NOW),
    )
    add_invitation(session, org, vendors, "V4", attempts=1, **failed("invalid_to_number", "21211"))
    add_invitation(session, org, vendors, "V5", status=InvitationStatus.SENT, attempts=1)
    session.commit()
    return World(org, customers, vendors, started.run_id)


def test_counts_by_reason_group_and_user_type(session: Session, world: World) -> None:
    report = failure_report(session, FailureFilter(org_id=world.org.id))

    assert report["total_failed"] == 6
    assert report["by_reason"] == {
        "bounce_no_email": 1,
        "company_domain": 1,
        "complaint": 1,
        "invalid_to_number": 1,
        "record_missing": 1,
        "technical_failure": 1,
    }
    assert report["by_outcome_class"] == {
        "refused": 2,
        "complained": 1,
        "permanent": 1,
        "provider": 1,
        "retries_exhausted": 1,
    }
    assert report["by_user_type"] == [
        {"user_type_id": world.customers.id, "name": world.customers.name, "failed": 3},
        {"user_type_id": world.vendors.id, "name": "Vendors", "failed": 3},
    ]
    assert report["filter"] == {
        "bulk_run_id": None,
        "user_type_id": None,
        "since": None,
        "include_resolved": False,
    }
    assert report["resolved"] == 0


def test_invitees_say_who_failed_and_why(session: Session, world: World) -> None:
    invitees = failure_report(session, FailureFilter(org_id=world.org.id))["invitees"]
    by_crm_id = {row["crm_id"]: row for row in invitees}

    # Delivered, and sent without an outcome yet, and queued: none of them failed.
    assert set(by_crm_id) == {"C3", "GONE", "T1", "V1", "V2", "V4"}
    assert by_crm_id["C3"]["reason"] == ReasonCode.COMPANY_DOMAIN
    assert by_crm_id["C3"]["meaning"] == describe_failure(ReasonCode.COMPANY_DOMAIN)
    assert by_crm_id["C3"]["bulk_run_id"] == world.run_id
    assert by_crm_id["T1"]["attempts"] == 5
    assert by_crm_id["T1"]["detail"] == "ses_throttled: rate exceeded"
    assert by_crm_id["T1"]["group"] == "retries_exhausted"
    bounced = by_crm_id["V1"]
    assert (bounced["reason"], bounced["detail"], bounced["group"]) == (
        "bounce_no_email",
        "Permanent/NoEmail",
        "permanent",
    )
    assert bounced["meaning"] == OUTCOME_DESCRIPTIONS["bounce_no_email"]
    assert bounced["at"] == NOW.isoformat()
    assert bounced["address"] == "v1@customer.example.org"
    assert bounced["user_type_id"] == world.vendors.id
    # Newest failure first: the complaint came a minute after the bounce.
    order = [row["crm_id"] for row in invitees]
    assert order.index("V2") < order.index("V1")


def test_bounce_after_a_delivery_receipt_is_a_failure_and_delivery_is_not(
    session: Session, world: World
) -> None:
    session.execute(
        update(Invitation)
        .where(Invitation.crm_id == "V3")
        .values(outcome_class=OutcomeClass.PERMANENT, outcome_code="bounce_general")
    )
    session.execute(
        update(Invitation).where(Invitation.crm_id == "V1").values(
            outcome_class=OutcomeClass.DELIVERED, outcome_code="delivered"
        )
    )  # fmt: skip
    session.commit()
    report = failure_report(session, FailureFilter(org_id=world.org.id))
    crm_ids = {row["crm_id"] for row in report["invitees"]}
    assert "V3" in crm_ids and "V1" not in crm_ids
    assert (
        report["by_reason"]["bounce_general"] == 1 and "bounce_no_email" not in report["by_reason"]
    )


def test_filters_by_bulk_run_user_type_and_since(session: Session, world: World) -> None:
    by_run = failure_report(session, FailureFilter(world.org.id, bulk_run_id=world.run_id))
    assert by_run["by_reason"] == {"company_domain": 1, "record_missing": 1}
    assert by_run["by_outcome_class"] == {"refused": 2}
    assert {row["crm_id"] for row in by_run["invitees"]} == {"C3", "GONE"}

    by_type = failure_report(session, FailureFilter(world.org.id, user_type_id=world.vendors.id))
    assert by_type["total_failed"] == 3
    assert {row["crm_id"] for row in by_type["invitees"]} == {"V1", "V2", "V4"}

    # Age two of them; `since` counts invitations created at or after it.
    old = datetime(2026, 1, 1, tzinfo=UTC)
    session.execute(
        update(Invitation).where(Invitation.crm_id.in_(["V1", "C3"])).values(created_at=old)
    )
    session.commit()
    cutoff = datetime(2026, 6, 1, tzinfo=UTC)
    recent = failure_report(session, FailureFilter(world.org.id, since=cutoff))
    assert recent["total_failed"] == 4
    assert {"V1", "C3"}.isdisjoint(row["crm_id"] for row in recent["invitees"])
    assert recent["filter"]["since"] == cutoff.isoformat()
    naive = failure_report(session, FailureFilter(world.org.id, since=cutoff.replace(tzinfo=None)))
    assert naive["total_failed"] == 4
    exactly = failure_report(session, FailureFilter(world.org.id, since=old))
    assert exactly["total_failed"] == 6

    future = failure_report(session, FailureFilter(world.org.id, since=datetime(2999, 1, 1)))
    assert future["total_failed"] == 0 and future["invitees"] == []
    assert future["by_reason"] == {} and future["by_user_type"] == []


def test_limit_bounds_the_invitees_not_the_counts(session: Session, world: World) -> None:
    report = failure_report(session, FailureFilter(world.org.id), limit=2)
    assert len(report["invitees"]) == 2 and report["total_failed"] == 6
    assert failure_report(session, FailureFilter(world.org.id), limit=0)["invitees"] == []
    with pytest.raises(InvalidInput):
        failure_report(session, FailureFilter(world.org.id), limit=-1)


def test_another_orgs_run_or_user_type_is_not_found(session: Session, world: World) -> None:
    other = make_org(session, name="Acme", company_domain="acme.com")
    other_type = client_portal(session, other)
    with pytest.raises(NotFound, match=f"bulk run {world.run_id} does not exist in org"):
        failure_report(session, FailureFilter(other.id, bulk_run_id=world.run_id))
    with pytest.raises(NotFound, match="user type"):
        failure_report(session, FailureFilter(world.org.id, user_type_id=other_type.id))
    with pytest.raises(NotFound, match="bulk run 999"):
        failure_report(session, FailureFilter(world.org.id, bulk_run_id=999))
    with pytest.raises(NotFound, match="org 999"):
        failure_report(session, FailureFilter(999))
    # And the other org's report sees none of the first org's failures.
    assert failure_report(session, FailureFilter(other.id))["total_failed"] == 0


def test_rows_for_csv_flattens_the_invitees(session: Session, world: World) -> None:
    report = failure_report(session, FailureFilter(world.org.id))
    rows = rows_for_csv(report)
    assert len(rows) == 6
    assert all(tuple(row) == CSV_FIELDS for row in rows)
    refused = next(row for row in rows if row["crm_id"] == "GONE")
    assert (refused["reason"], refused["group"]) == ("record_missing", "refused")
    assert refused["bulk_run_id"] == world.run_id
    assert all(value is not None for row in rows for value in row.values())


def test_report_costs_a_fixed_number_of_statements(
    session: Session, world: World, engine: Engine
) -> None:
    def statements_for_report() -> int:
        session.expunge_all()
        query = FailureFilter(
            world.org.id, bulk_run_id=world.run_id, user_type_id=world.customers.id
        )
        with counting_statements(engine) as statements:
            failure_report(session, query)
        session.rollback()
        # SQLite's session opens with BEGIN IMMEDIATE; count the queries only.
        return sum(1 for statement in statements if not statement.startswith("BEGIN"))

    few = statements_for_report()
    session.add_all(
        Invitation(
            org_id=world.org.id,
            user_type_id=world.customers.id,
            bulk_run_id=world.run_id,
            crm_id=f"X{n}",
            kind=EmailKind.ACCEPT_INVITATION,
            address=f"x{n}@customer.example.org",
            **(
                failed(ReasonCode.NO_CONSENT)
                if n % 2
                else after_send(OutcomeClass.PERMANENT, "bounce_general", "Permanent/General", NOW)
            ),
        )
        for n in range(120)
    )
    session.commit()
    many = statements_for_report()
    assert few == many <= 5


# --- the CLI ---------------------------------------------------------------------------


@pytest.fixture
def invited(cli_env: Path, tmp_path: Path) -> None:
    """Org 1 with bulk run 1: A1 sent (then bounced), A2 refused, A3 missing."""
    assert run("db", "upgrade")[0] == 0
    assert run("orgs", "create", "--name", "Acme", "--domain", "acme.com",
               "--country", "US")[0] == 0  # fmt: skip
    assert run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
               "--modules", "Contacts")[0] == 0  # fmt: skip
    records = tmp_path / "records.jsonl"
    records.write_text(
        '{"crm_id": "A1", "module": "Contacts", "first_name": "Ana", "email": "ana@example.org"}\n'
        '{"crm_id": "A2", "module": "Contacts", "first_name": "Bo", "email": "bo@acme.com"}\n',
        encoding="utf-8",
    )
    assert run("records", "import", str(records), "--org", "1")[0] == 0
    code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1",
                    "-r", "A1", "-r", "A2", "-r", "A3")  # fmt: skip
    assert code == 1, out
    engine = make_engine(Settings.from_env().database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(Invitation)
                .where(Invitation.crm_id == "A1")
                .values(
                    outcome_class=OutcomeClass.PERMANENT,
                    outcome_code="bounce_no_email",
                    outcome_raw="Permanent/NoEmail",
                    outcome_at=NOW,
                )
            )
    finally:
        engine.dispose()


def test_cli_json(invited: None) -> None:
    code, out = run("failures", "--org", "1", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["total_failed"] == 3
    assert report["by_outcome_class"] == {"refused": 2, "permanent": 1}
    assert {row["crm_id"]: row["reason"] for row in report["invitees"]} == {
        "A1": "bounce_no_email",
        "A2": "company_domain",
        "A3": "record_missing",
    }

    code, out = run("failures", "--org", "1", "--bulk-run", "1", "--since", "2999-01-01", "--json")
    assert code == 0 and json.loads(out)["total_failed"] == 0
    code, out = run("failures", "--org", "1", "--user-type", "1", "--limit", "1", "--json")
    assert code == 0 and len(json.loads(out)["invitees"]) == 1


def test_cli_csv_parses_back(invited: None) -> None:
    code, out = run("failures", "--org", "1", "--csv", "--since", "2020-01-01T00:00")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3
    assert tuple(rows[0]) == CSV_FIELDS
    by_crm_id = {row["crm_id"]: row for row in rows}
    assert by_crm_id["A1"]["detail"] == "Permanent/NoEmail"
    assert by_crm_id["A1"]["group"] == "permanent"
    assert by_crm_id["A2"]["meaning"] == describe_failure("company_domain")
    assert by_crm_id["A3"]["reason"] == "record_missing"


def test_cli_summary(invited: None) -> None:
    code, out = run("failures", "--org", "1")
    assert code == 0, out
    for needle in ("3 failed invitees", "company_domain", "bounce_no_email", "refused",
                   "Client Portal", "Failed invitees"):  # fmt: skip
        assert needle in out, out


def test_cli_refuses_bad_requests_cleanly(invited: None) -> None:
    for args, needle in (
        (["--json", "--csv"], "choose one of --json and --csv"),
        (["--since", "yesterday"], "is not an ISO 8601 date"),
        (["--since", "2026-13-01"], "is not an ISO 8601 date"),
        (["--bulk-run", "7"], "bulk run 7 does not exist in org 1"),
        (["--user-type", "9"], "user type 9 does not exist in org 1"),
    ):
        code, out = run("failures", "--org", "1", *args)
        assert code == 2, (args, out)
        assert needle in out and "Traceback" not in out, out
    code, out = run("failures", "--help")
    assert code == 0 and "--bulk-run" in out and "portalflow failures --org 1" in out
