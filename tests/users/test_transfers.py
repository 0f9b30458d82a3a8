"""Moving users between user types (PORTALS.md, "Moving users between user types"):
transfers, transfer and delete, lead conversion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from portalflow.cli import events as cli_events
from portalflow.cli import transfers as cli_transfers
from portalflow.cli.common import PortalflowGroup
from portalflow.config import Settings
from portalflow.models import (
    CrmEvent,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    EmailKind,
    EmailTemplate,
    Invitation,
    InvitationStatus,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    RefusalCode,
    make_engine,
    make_session_factory,
    utcnow,
)
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.errors import InvalidInput, Refused
from portalflow.pipelines.licensing import licences, purchases
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import lead_conversion, transfer_and_delete, transfers

from ..cli_runner import run
from ..factories import client_portal, make_inviter, make_org, make_record

S = PortalUserStatus
CONFIRMED_AT = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
CHANGED_AT = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)


def add_user(
    session: Session,
    org: Org,
    user_type: PortalUserType,
    crm_id: str,
    status: PortalUserStatus = S.CONFIRMED,
    *,
    module: str | None = None,
) -> PortalUser:
    record = make_record(session, org, crm_id, module=module or user_type.module)
    confirmed = status in (S.CONFIRMED, S.LOGIN_SUSPENDED, S.DEACTIVATED)
    user = PortalUser(
        org_id=org.id,
        record_id=record.id,
        user_type_id=user_type.id,
        status=status,
        email=record.email,
        confirmed_at=CONFIRMED_AT if confirmed else None,
        password_hash="scrypt$hash" if confirmed else None,
        status_changed_at=CHANGED_AT,
    )
    session.add(user)
    session.flush()
    return user


def snapshot(session: Session, user_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    session.expire_all()
    users = session.scalars(select(PortalUser).where(PortalUser.id.in_(user_ids)))
    return {
        u.id: (u.user_type_id, u.status, u.confirmed_at, u.password_hash, u.status_changed_at)
        for u in users
    }


@pytest.fixture
def org(session: Session) -> Org:
    org = make_org(session)
    make_inviter(session, org)
    return org


def contacts_type(session: Session, org: Org, name: str, **options: Any) -> PortalUserType:
    options.setdefault("licences", 100)
    return purchases.add_user_type_with_licences(
        session, org.id, name=name, module="Contacts", **options
    )


# ---------------------------------------------------------------------------------------
# Transfers


def test_transfer_between_same_preference_types_keeps_status_and_confirmation(
    session: Session, org: Org
) -> None:
    customers = contacts_type(session, org, "Customers")
    partners = contacts_type(session, org, "Partners")
    confirmed = add_user(session, org, customers, "C-1", S.CONFIRMED)
    suspended = add_user(session, org, customers, "C-2", S.LOGIN_SUSPENDED)
    deactivated = add_user(session, org, customers, "C-3", S.DEACTIVATED)
    session.commit()
    ids = [confirmed.id, suspended.id, deactivated.id]
    before = snapshot(session, ids)

    result = transfers.transfer_users(session, org.id, ids, partners.id)
    session.commit()

    assert result.moved == ids and result.refused == {}
    after = snapshot(session, ids)
    for user_id in ids:
        assert after[user_id][0] == partners.id
        assert after[user_id][1:] == before[user_id][1:]  # status, confirmation, password kept


def test_transfer_refuses_invited_and_removed_users_one_by_one(session: Session, org: Org) -> None:
    customers = contacts_type(session, org, "Customers")
    partners = contacts_type(session, org, "Partners")
    ok = add_user(session, org, customers, "C-1", S.CONFIRMED)
    invited = add_user(session, org, customers, "C-2", S.INVITED)
    removed = add_user(session, org, customers, "C-3", S.REMOVED)
    session.commit()

    result = transfers.transfer_users(
        session, org.id, [ok.id, invited.id, removed.id, 9999], partners.id
    )
    session.commit()

    assert result.moved == [ok.id]
    assert set(result.refused) == {invited.id, removed.id, 9999}
    codes = {user_id: refusal.code for user_id, refusal in result.refused.items()}
    assert codes == {
        invited.id: RefusalCode.INVALID_TRANSITION,
        removed.id: RefusalCode.INVALID_TRANSITION,
        9999: RefusalCode.UNKNOWN_USER,
    }
    assert "it is removed" in result.refused[removed.id].detail
    after = snapshot(session, [invited.id, removed.id])
    assert {row[0] for row in after.values()} == {customers.id}


def test_transfer_between_different_preferences_is_refused_and_nobody_moves(
    session: Session,
) -> None:
    org = make_org(session, country="IN")
    email_type = contacts_type(session, org, "Customers")
    phone_type = contacts_type(session, org, "Customers SMS", invitation_preference="phone")
    other_phone = contacts_type(session, org, "Dealers SMS", invitation_preference="phone")
    by_email = add_user(session, org, email_type, "C-1")
    by_phone = add_user(session, org, other_phone, "C-2")
    session.commit()

    with pytest.raises(InvalidInput, match="invites by email, 'Customers SMS' by phone"):
        # One compatible user and one not: the whole request is refused.
        transfers.transfer_users(session, org.id, [by_phone.id, by_email.id], phone_type.id)
    session.rollback()

    after = snapshot(session, [by_email.id, by_phone.id])
    assert after[by_email.id][0] == email_type.id
    assert after[by_phone.id][0] == other_phone.id


def test_transfer_between_modules_is_refused(session: Session, org: Org) -> None:
    vendors = orgs.add_user_type(session, org.id, name="Vendors", module="Vendors")
    customers = contacts_type(session, org, "Customers")
    vendor = add_user(session, org, vendors, "V-1")
    with pytest.raises(InvalidInput, match="same module; nobody was moved"):
        transfers.transfer_users(session, org.id, [vendor.id], customers.id)


def test_transfer_over_the_targets_licence_limit_is_refused(
    session: Session, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(licences, "CLIENT_PORTAL_FREE_USERS", 3)
    portal = client_portal(session, org)
    customers = contacts_type(session, org, "Customers")
    add_user(session, org, portal, "C-0")  # holds one of the three
    holders = [add_user(session, org, customers, f"C-{n}") for n in (1, 2, 3)]
    deactivated = add_user(session, org, customers, "C-4", S.DEACTIVATED)
    session.commit()

    with pytest.raises(Refused, match=r"2 licence\(s\) left.*3 of the") as refused:
        transfers.transfer_users(session, org.id, [u.id for u in holders], portal.id)
    assert refused.value.refusal.code == RefusalCode.LICENCE_LIMIT
    session.rollback()
    assert {row[0] for row in snapshot(session, [u.id for u in holders]).values()} == {customers.id}

    # Deactivated users hold no licence: two holders and a deactivated user fit.
    ids = [holders[0].id, holders[1].id, deactivated.id]
    result = transfers.transfer_users(session, org.id, ids, portal.id)
    session.commit()
    assert result.moved == ids


def test_transfer_to_a_type_being_deleted_is_refused(session: Session, org: Org) -> None:
    customers = contacts_type(session, org, "Customers")
    partners = contacts_type(session, org, "Partners")
    user = add_user(session, org, client_portal(session, org), "C-1")
    transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, customers.id)
    with pytest.raises(InvalidInput, match="'Partners' is being deleted"):
        transfers.transfer_users(session, org.id, [user.id], partners.id)


# ---------------------------------------------------------------------------------------
# Transfer and delete


def seed_type_to_delete(session: Session, org: Org) -> tuple[PortalUserType, PortalUserType]:
    """'Partners' with five users of every status, an invitation and a template."""
    partners = contacts_type(session, org, "Partners")
    customers = contacts_type(session, org, "Customers")
    statuses = [S.CONFIRMED, S.INVITED, S.LOGIN_SUSPENDED, S.DEACTIVATED, S.REMOVED]
    for n, status in enumerate(statuses):
        user = add_user(session, org, partners, f"P-{n}", status)
    session.add(
        Invitation(
            org_id=org.id,
            user_type_id=partners.id,
            crm_id="P-1",
            record_id=user.record_id,
            portal_user_id=user.id,
            kind=EmailKind.ACCEPT_INVITATION,
            status=InvitationStatus.SENT,
        )
    )
    session.add(
        EmailTemplate(
            org_id=org.id,
            user_type_id=partners.id,
            kind=EmailKind.ACCEPT_INVITATION,
            language="en",
            subject="Welcome",
            html_body="<p>{{ invite_url }}</p>",
        )
    )
    session.commit()
    return partners, customers


def statuses_by_type(session: Session) -> dict[int, list[PortalUserStatus]]:
    found: dict[int, list[PortalUserStatus]] = {}
    for user in session.scalars(select(PortalUser).order_by(PortalUser.id)):
        found.setdefault(user.user_type_id, []).append(user.status)
    return found


def assert_every_user_has_a_type(session: Session) -> None:
    orphans = session.scalar(
        select(func.count())
        .select_from(PortalUser)
        .outerjoin(PortalUserType, PortalUserType.id == PortalUser.user_type_id)
        .where(PortalUserType.id.is_(None))
    )
    assert orphans == 0


def test_transfer_and_delete_moves_every_user_then_deletes_the_type(
    session: Session, org: Org
) -> None:
    partners, customers = seed_type_to_delete(session, org)
    before = statuses_by_type(session)[partners.id]

    transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, customers.id)
    session.commit()
    assert transfer_and_delete.continue_transfer_and_delete(session, partners.id, max_batches=None)

    session.expire_all()
    assert session.get(PortalUserType, partners.id) is None
    assert statuses_by_type(session) == {customers.id: before}  # status kept, removed too
    assert set(session.scalars(select(Invitation.user_type_id))) == {customers.id}
    assert session.scalar(select(func.count()).select_from(EmailTemplate)) == 0
    # Idempotent: again is a no-op.
    assert transfer_and_delete.continue_transfer_and_delete(session, partners.id)


def test_transfer_and_delete_interrupted_halfway_then_resumed(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as setup:
        org = make_org(setup)
        partners, customers = seed_type_to_delete(setup, org)
        org_id, partners_id, customers_id = org.id, partners.id, customers.id
        transfer_and_delete.start_transfer_and_delete(setup, org_id, partners_id, customers_id)
        setup.commit()

    # A worker moves one batch of two, then dies in the middle of the next batch.
    worker = session_factory()
    assert not transfer_and_delete.continue_transfer_and_delete(worker, partners_id, batch_size=2)
    transfer_and_delete._next_batch(worker, partners_id, 2, utcnow())  # written, never committed
    worker.close()  # the crash: the open transaction is rolled back

    with session_factory() as check:
        assert check.get(PortalUserType, partners_id) is not None
        assert {k: len(v) for k, v in statuses_by_type(check).items()} == {
            customers_id: 2,
            partners_id: 3,
        }
        assert_every_user_has_a_type(check)

    with session_factory() as resumed:
        assert transfer_and_delete.continue_transfer_and_delete(
            resumed, partners_id, batch_size=2, max_batches=None
        )
    with session_factory() as check:
        assert check.get(PortalUserType, partners_id) is None
        assert {k: len(v) for k, v in statuses_by_type(check).items()} == {customers_id: 5}
        assert_every_user_has_a_type(check)


def test_transfer_and_delete_refusals(session: Session) -> None:
    org = make_org(session, country="IN")
    portal = client_portal(session, org)
    partners = contacts_type(session, org, "Partners")
    customers = contacts_type(session, org, "Customers")
    by_phone = contacts_type(session, org, "Customers SMS", invitation_preference="phone")

    with pytest.raises(InvalidInput, match="Client Portal user type cannot be deleted"):
        transfer_and_delete.start_transfer_and_delete(session, org.id, portal.id, customers.id)
    with pytest.raises(InvalidInput, match="into itself"):
        transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, partners.id)
    with pytest.raises(InvalidInput, match="same invitation preference"):
        transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, by_phone.id)
    with pytest.raises(InvalidInput, match="not being deleted"):
        transfer_and_delete.continue_transfer_and_delete(session, partners.id)

    transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, customers.id)
    # Starting again with the same target resumes:
    transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, customers.id)
    with pytest.raises(InvalidInput, match="already being deleted"):
        transfer_and_delete.start_transfer_and_delete(session, org.id, partners.id, portal.id)
    with pytest.raises(InvalidInput, match="itself being deleted"):
        transfer_and_delete.start_transfer_and_delete(session, org.id, customers.id, partners.id)
    with pytest.raises(InvalidInput, match="'Partners' is being deleted into 'Customers'"):
        transfer_and_delete.start_transfer_and_delete(session, org.id, customers.id, portal.id)
    assert session.get(PortalUserType, portal.id) is not None


def test_cli_user_types_delete_transfer_to(cli_env: Any) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run(
        "orgs", "create", "--name", "Zylker", "--domain", "zylker.com", "--country", "US", "--json"
    )
    assert code == 0, out
    org = json.loads(out)
    add = ("user-types", "add", "--org", str(org["id"]), "--module", "Contacts",
           "--licences", "50", "--json")  # fmt: skip
    partners = json.loads(run(*add, "--name", "Partners")[1])
    customers = json.loads(run(*add, "--name", "Customers")[1])

    engine = make_engine(Settings.from_env().database_url)
    try:
        with make_session_factory(engine)() as session:
            found = session.get(Org, org["id"])
            assert found is not None
            partners_type = session.get(PortalUserType, partners["id"])
            assert partners_type is not None
            for n in range(5):
                add_user(session, found, partners_type, f"P-{n}")
            session.commit()

        code, out = run(
            "user-types", "delete", "--org", str(org["id"]), "--user-type",
            str(org["client_portal_user_type_id"]), "--transfer-to", str(customers["id"]),
        )  # fmt: skip
        assert code == 2 and "Client Portal user type cannot be deleted" in out

        code, out = run(
            "user-types", "delete", "--org", str(org["id"]), "--user-type", str(partners["id"]),
            "--transfer-to", str(customers["id"]), "--batch-size", "2",
        )  # fmt: skip
        assert code == 0, out
        assert "2 of 5 user(s) moved" in out and "4 of 5 user(s) moved" in out
        assert "'Partners' deleted" in out

        with make_session_factory(engine)() as session:
            assert session.get(PortalUserType, partners["id"]) is None
            assert set(session.scalars(select(PortalUser.user_type_id))) == {customers["id"]}
    finally:
        engine.dispose()

    code, out = run("user-types", "list", "--org", str(org["id"]), "--json")
    assert [t["name"] for t in json.loads(out)] == ["Client Portal", "Customers"]


# ---------------------------------------------------------------------------------------
# Lead conversion (the seed: Leads A-D converted into "Contacts 1" / "Contacts 2")


@pytest.fixture
def leads_org(session: Session, org: Org) -> dict[str, Any]:
    leads = orgs.add_user_type(session, org.id, name="Leads", module="Leads")
    contacts1 = contacts_type(session, org, "Contacts 1")
    contacts2 = contacts_type(session, org, "Contacts 2")
    users = {}
    statuses = [S.CONFIRMED, S.INVITED, S.DEACTIVATED, S.LOGIN_SUSPENDED]
    for letter, status in zip("ABCD", statuses, strict=True):
        users[letter] = add_user(session, org, leads, f"L-{letter}", status)
        make_record(session, org, f"C-{letter}", module="Contacts")
    session.commit()
    return {"org": org, "leads": leads, "c1": contacts1, "c2": contacts2, "users": users}


def convert(session: Session, org: Org, key: str, payload: dict[str, Any]) -> CrmEvent:
    event, _ = crm_events.record_event(session, org.id, CrmEventKind.LEAD_CONVERTED, key, payload)
    session.commit()
    lead_conversion.handle_lead_converted(session, event.id)
    session.commit()
    session.refresh(event)
    return event


def user_state(session: Session, user: PortalUser) -> tuple[int, str, PortalUserStatus]:
    session.refresh(user)
    crm_id = session.scalar(select(CrmRecord.crm_id).where(CrmRecord.id == user.record_id))
    assert crm_id is not None
    return user.user_type_id, crm_id, user.status


def test_lead_conversion_with_an_explicit_choice(session: Session, leads_org: Any) -> None:
    org, users, c2 = leads_org["org"], leads_org["users"], leads_org["c2"]
    payload = {"lead_id": "L-A", "contact_id": "C-A", "user_type_id": c2.id}
    event = convert(session, org, "evt-1", payload)
    assert (event.status, event.result_code) == (CrmEventStatus.PROCESSED, None)
    assert user_state(session, users["A"]) == (c2.id, "C-A", S.CONFIRMED)
    assert users["A"].confirmed_at == CONFIRMED_AT


def test_lead_conversion_needs_a_choice_then_uses_the_default(
    session: Session, leads_org: Any
) -> None:
    org, users, leads = leads_org["org"], leads_org["users"], leads_org["leads"]
    c1 = leads_org["c1"]
    event = convert(session, org, "evt-2", {"leads": [{"lead_id": "L-B", "contact_id": "C-B"}]})
    assert (event.status, event.result_code) == (CrmEventStatus.FAILED, "user_type_choice_required")
    assert "lead L-B: user_type_choice_required" in (event.detail or "")
    assert user_state(session, users["B"]) == (leads.id, "L-B", S.INVITED)

    # The admin resolves it: a conversion default, then the event is applied again.
    lead_conversion.set_conversion_default(session, org.id, c1.id)
    session.commit()
    lead_conversion.handle_lead_converted(session, event.id)
    session.commit()
    session.refresh(event)
    assert event.status == CrmEventStatus.PROCESSED
    assert user_state(session, users["B"]) == (c1.id, "C-B", S.INVITED)


def test_bulk_conversion_of_the_seeds_leads_with_per_lead_results(
    session: Session, leads_org: Any
) -> None:
    org, users, leads = leads_org["org"], leads_org["users"], leads_org["leads"]
    c1, c2 = leads_org["c1"], leads_org["c2"]
    make_record(session, org, "L-E", module="Leads")  # a lead who is not a portal user
    session.commit()
    payload = {
        "leads": [
            {"lead_id": "L-A", "contact_id": "C-A", "user_type_id": c2.id},
            {"lead_id": "L-B", "contact_id": "C-B"},  # several candidates, no default
            {"lead_id": "L-C", "contact_id": "C-C", "user_type_id": c1.id},
            {"lead_id": "L-D", "contact_id": "C-missing", "user_type_id": c1.id},
            {"lead_id": "L-E", "contact_id": "C-E"},
        ]
    }
    event = convert(session, org, "evt-bulk", payload)
    assert event.status == CrmEventStatus.FAILED
    assert event.result_code == "user_type_choice_required"
    detail = event.detail or ""
    assert detail.startswith("2 of 5 lead(s) failed")
    assert "lead L-B: user_type_choice_required" in detail
    assert "lead L-D: record_missing" in detail
    assert user_state(session, users["A"]) == (c2.id, "C-A", S.CONFIRMED)
    assert user_state(session, users["B"]) == (leads.id, "L-B", S.INVITED)
    assert user_state(session, users["C"]) == (c1.id, "C-C", S.DEACTIVATED)
    assert user_state(session, users["D"]) == (leads.id, "L-D", S.LOGIN_SUSPENDED)


def test_many_leads_in_one_event_with_the_default(session: Session, org: Org) -> None:
    leads = orgs.add_user_type(session, org.id, name="Leads", module="Leads")
    contacts_type(session, org, "Contacts 1")
    contacts2 = contacts_type(session, org, "Contacts 2")
    lead_conversion.set_conversion_default(session, org.id, contacts2.id)
    users = [add_user(session, org, leads, f"L-{n}") for n in range(60)]
    for n in range(60):
        make_record(session, org, f"C-{n}", module="Contacts")
    session.commit()

    payload = lead_conversion.lead_payload(
        [f"L-{n}" for n in range(60)], [f"C-{n}" for n in range(60)]
    )
    event = convert(session, org, "evt-many", payload)

    assert (event.status, event.detail) == (CrmEventStatus.PROCESSED, "60 converted")
    session.expire_all()
    assert {u.user_type_id for u in users} == {contacts2.id}
    assert [user_state(session, u)[1] for u in users] == [f"C-{n}" for n in range(60)]


def test_single_candidate_is_chosen_by_invitation_preference(session: Session) -> None:
    org = make_org(session, country="IN")
    leads = orgs.add_user_type(
        session, org.id, name="Leads SMS", module="Leads", invitation_preference="phone"
    )
    by_phone = contacts_type(session, org, "Contacts SMS", invitation_preference="phone")
    contacts_type(session, org, "Contacts 2")  # email: not a candidate
    user = add_user(session, org, leads, "L-A", S.CONFIRMED)
    make_record(session, org, "C-A", module="Contacts")
    session.commit()

    event = convert(session, org, "evt-1", {"lead_id": "L-A", "contact_id": "C-A"})

    assert event.status == CrmEventStatus.PROCESSED
    assert user_state(session, user) == (by_phone.id, "C-A", S.CONFIRMED)


def test_an_event_processed_twice_does_nothing_the_second_time(
    session: Session, leads_org: Any
) -> None:
    org, users, c1 = leads_org["org"], leads_org["users"], leads_org["c1"]
    payload = {"lead_id": "L-A", "contact_id": "C-A", "user_type_id": c1.id}
    event = convert(session, org, "evt-1", payload)
    processed_at = event.processed_at
    assert user_state(session, users["A"]) == (c1.id, "C-A", S.CONFIRMED)
    # Delivered again: the same event id is the same row, and it is not applied again.
    again, created = crm_events.record_event(
        session, org.id, CrmEventKind.LEAD_CONVERTED, "evt-1", payload
    )
    assert (again.id, created) == (event.id, False)
    later = utcnow() + timedelta(hours=1)
    result = lead_conversion.handle_lead_converted(session, event.id, now=later)
    session.commit()
    session.refresh(event)
    assert result.already_handled and result.leads == []
    assert event.processed_at == processed_at
    assert user_state(session, users["A"]) == (c1.id, "C-A", S.CONFIRMED)


def test_set_conversion_default_only_for_contacts_types(session: Session, leads_org: Any) -> None:
    org, c1, c2 = leads_org["org"], leads_org["c1"], leads_org["c2"]
    with pytest.raises(InvalidInput, match="must be a Contacts user type"):
        lead_conversion.set_conversion_default(session, org.id, leads_org["leads"].id)
    lead_conversion.set_conversion_default(session, org.id, c1.id)
    lead_conversion.set_conversion_default(session, org.id, c2.id)
    session.commit()
    session.expire_all()
    defaults = session.scalars(
        select(PortalUserType.name).where(
            PortalUserType.org_id == org.id, PortalUserType.conversion_default
        )
    )
    assert list(defaults) == ["Contacts 2"]


# ---------------------------------------------------------------------------------------
# The command functions the root app registers (`users transfer`, `events lead-converted`)


def local_cli() -> typer.Typer:
    app = typer.Typer(cls=PortalflowGroup)
    app.command("transfer")(cli_transfers.transfer)
    app.command("lead-converted")(cli_events.lead_converted)
    return app


def test_cli_transfer_and_lead_converted(cli_env: Any) -> None:
    assert run("db", "upgrade")[0] == 0
    engine = make_engine(Settings.from_env().database_url)
    try:
        with make_session_factory(engine)() as session:
            org = make_org(session)
            leads = orgs.add_user_type(session, org.id, name="Leads", module="Leads")
            customers = contacts_type(session, org, "Customers")
            lead = add_user(session, org, leads, "L-A")
            make_record(session, org, "C-A", module="Contacts")
            portal_users = [
                add_user(session, org, customers, "C-1"),
                add_user(session, org, customers, "C-2", S.INVITED),
            ]
            session.commit()
            org_id, portal_id = org.id, client_portal(session, org).id

        runner = CliRunner()
        args = ["transfer", "--org", str(org_id), "--to", str(portal_id), "--json"]
        result = runner.invoke(local_cli(), [*args, "--from-type", str(customers.id)])
        assert result.exit_code == 1, result.output  # the invited user is refused
        moved = json.loads(result.stdout)
        assert moved["moved"] == [portal_users[0].id]
        assert [r["user_id"] for r in moved["refused"]] == [portal_users[1].id]

        result = runner.invoke(local_cli(), [*args, "--user", str(lead.id)])
        assert result.exit_code == 2 and "same module" in result.output

        convert_args = ["lead-converted", "--org", str(org_id), "--lead", "L-A", "--contact", "C-A"]
        result = runner.invoke(local_cli(), convert_args)
        assert result.exit_code == 1, result.output  # Client Portal and Customers: choose
        assert "user_type_choice_required" in result.output
        result = runner.invoke(
            local_cli(), [*convert_args, "--user-type", str(customers.id), "--event-id", "evt-9"]
        )
        assert result.exit_code == 0, result.output
        assert "processed" in result.output
        with make_session_factory(engine)() as session:
            converted = session.get(PortalUser, lead.id)
            assert converted is not None and converted.user_type_id == customers.id
    finally:
        engine.dispose()
