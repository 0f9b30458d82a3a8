"""Address changes (PORTALS.md "Address changes"): CRM email and phone change events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dramatiq import Message, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    BulkRun,
    BulkRunStatus,
    Channel,
    CrmEvent,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationStatus,
    Org,
    PortalUser,
    PortalUserStatus,
    ReasonCode,
    make_engine,
    make_session_factory,
)
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.delivery import dispatch
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.users import address_changes, superseding
from portalflow.pipelines.users.lifecycle import Action, InvalidTransition, transition
from portalflow.workers import actors, address_actors

from ..cli_runner import run
from ..conftest import wait_for
from ..factories import client_portal, make_inviter, make_org, make_record, start_and_expand

S = PortalUserStatus
NEW = "sage.new@customer.example.org"


# --- builders ----------------------------------------------------------------------------


def make_user(
    session: Session,
    org: Org,
    crm_id: str,
    status: PortalUserStatus,
    *,
    user_type_id: int | None = None,
    **overrides: Any,
) -> PortalUser:
    """A record and its portal user in ``status`` (as acceptance or an admin left it)."""
    record = make_record(session, org, crm_id, **overrides.pop("record", {}))
    values: dict[str, Any] = {
        "org_id": org.id,
        "record_id": record.id,
        "user_type_id": user_type_id or client_portal(session, org).id,
        "status": status,
        "email": record.email,
        "phone": record.phone,
    }
    values.update(overrides)
    user = PortalUser(**values)
    session.add(user)
    session.flush()
    return user


def sent_invitation(
    session: Session, user: PortalUser, kind: EmailKind = EmailKind.ACCEPT_INVITATION
) -> Invitation:
    """An invitation that went out earlier and is still live."""
    record = session.get_one(CrmRecord, user.record_id)
    invitation = Invitation(
        org_id=user.org_id,
        user_type_id=user.user_type_id,
        crm_id=record.crm_id,
        record_id=record.id,
        portal_user_id=user.id,
        kind=kind,
        channel=Channel.EMAIL,
        language="en",
        address=user.email,
        status=InvitationStatus.SENT,
        attempts=1,
    )
    session.add(invitation)
    session.flush()
    return invitation


def email_event(session: Session, org: Org, crm_id: str, email: str, key: str = "evt-1") -> int:
    event, _ = crm_events.record_event(
        session, org.id, CrmEventKind.EMAIL_CHANGED, key, {"record_id": crm_id, "email": email}
    )
    session.commit()
    return event.id


def phone_event(session: Session, org: Org, crm_id: str, phone: str, key: str = "evt-p") -> int:
    event, _ = crm_events.record_event(
        session, org.id, CrmEventKind.PHONE_CHANGED, key, {"record_id": crm_id, "phone": phone}
    )
    session.commit()
    return event.id


def invitations_of(session: Session, user: PortalUser) -> list[Invitation]:
    session.expire_all()
    query = select(Invitation).where(Invitation.portal_user_id == user.id)
    return list(session.scalars(query.order_by(Invitation.id)))


def fresh(session: Session, obj: Any) -> Any:
    session.expire_all()
    return session.get_one(type(obj), obj.id)


def assert_new_invitation(
    invitation: Invitation, user: PortalUser, kind: EmailKind, address: str, channel: Channel
) -> None:
    assert invitation.kind == kind
    assert invitation.channel == channel
    assert invitation.address == address
    assert invitation.status == InvitationStatus.QUEUED
    assert (invitation.org_id, invitation.user_type_id) == (user.org_id, user.user_type_id)
    assert (invitation.record_id, invitation.portal_user_id) == (user.record_id, user.id)
    assert invitation.bulk_run_id is None and invitation.attempts == 0


def assert_processed(session: Session, event_id: int) -> CrmEvent:
    event = session.get_one(CrmEvent, event_id)
    assert event.status == CrmEventStatus.PROCESSED, event.detail
    assert event.result_code is None and event.processed_at is not None
    return event


# --- recording events ----------------------------------------------------------------------


def test_the_same_event_id_is_recorded_once_per_org(session: Session) -> None:
    org = make_org(session)
    other = make_org(session, name="Other", company_domain="other.com")
    payload = {"record_id": "c1", "email": NEW}
    first, created = crm_events.record_event(
        session, org.id, CrmEventKind.EMAIL_CHANGED, "k1", payload
    )
    again, created_again = crm_events.record_event(
        session, org.id, "record.email_changed", " k1 ", dict(payload)
    )
    with pytest.raises(crm_events.EventIdReused):
        crm_events.record_event(
            session, org.id, "record.email_changed", "k1", {"record_id": "x", "email": "y@z.org"}
        )
    elsewhere, created_elsewhere = crm_events.record_event(
        session, other.id, CrmEventKind.EMAIL_CHANGED, "k1", payload
    )
    session.commit()
    assert (created, created_again, created_elsewhere) == (True, False, True)
    assert again.id == first.id and again.payload == payload
    assert elsewhere.id != first.id
    assert first.status == CrmEventStatus.RECEIVED
    assert session.scalar(select(func.count()).select_from(CrmEvent)) == 2


def test_recording_refuses_unknown_orgs_kinds_and_empty_keys(session: Session) -> None:
    org = make_org(session)
    with pytest.raises(NotFound, match="org 999 does not exist"):
        crm_events.record_event(session, 999, CrmEventKind.EMAIL_CHANGED, "k", {})
    with pytest.raises(InvalidInput, match="event kind"):
        crm_events.record_event(session, org.id, "record.teleported", "k", {})
    with pytest.raises(InvalidInput, match="idempotency key"):
        crm_events.record_event(session, org.id, CrmEventKind.EMAIL_CHANGED, "  ", {})


# --- email change, by the user's starting status -------------------------------------------


def test_email_change_of_confirmed_user_suspends_login_and_sends_confirmation(
    session: Session,
) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED, language="fr")
    accepted = sent_invitation(session, user)
    accepted.status = InvitationStatus.ACCEPTED
    event_id = email_event(session, org, "c1", NEW)

    ids = address_changes.handle_email_changed(session, event_id)
    session.commit()

    user = fresh(session, user)
    assert (user.status, user.email, user.pending_email) == (S.LOGIN_SUSPENDED, NEW, None)
    assert session.get_one(CrmRecord, user.record_id).email == NEW
    old, new = invitations_of(session, user)
    assert ids == [new.id]
    assert_new_invitation(new, user, EmailKind.CONFIRM_EMAIL, NEW, Channel.EMAIL)
    assert new.language == "fr" and new.crm_id == "c1"
    assert old.status == InvitationStatus.ACCEPTED  # an accepted token is not "superseded"
    assert "login suspended" in (assert_processed(session, event_id).detail or "")


def test_email_changed_again_while_login_suspended_confirms_the_newest_address(
    session: Session,
) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    [first] = address_changes.handle_email_changed(
        session, email_event(session, org, "c1", "first@customer.example.org", "e1")
    )
    session.get_one(Invitation, first).status = InvitationStatus.SENT  # it went out
    session.commit()

    [second] = address_changes.handle_email_changed(
        session, email_event(session, org, "c1", NEW, "e2")
    )
    session.commit()

    user = fresh(session, user)
    assert (user.status, user.email) == (S.LOGIN_SUSPENDED, NEW)
    old, new = invitations_of(session, user)
    assert (old.id, new.id) == (first, second)
    assert (old.status, old.superseded_by_id) == (InvitationStatus.SUPERSEDED, second)
    assert_new_invitation(new, user, EmailKind.CONFIRM_EMAIL, NEW, Channel.EMAIL)


def test_email_change_of_unconfirmed_user_supersedes_and_invites_again(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "c1")
    _, [queued] = start_and_expand(session, org, inviter, ["c1"])
    session.get_one(Invitation, queued).status = InvitationStatus.SENT
    session.commit()
    user = session.scalars(select(PortalUser)).one()

    ids = address_changes.handle_email_changed(session, email_event(session, org, "c1", NEW))
    session.commit()

    user = fresh(session, user)
    assert (user.status, user.email) == (S.INVITED, NEW)  # the status stays unconfirmed
    old, new = invitations_of(session, user)
    assert ids == [new.id]
    assert (old.status, old.superseded_by_id) == (InvitationStatus.SUPERSEDED, new.id)
    assert_new_invitation(new, user, EmailKind.ACCEPT_INVITATION, NEW, Channel.EMAIL)
    assert new.language == "en"


def test_email_change_supersedes_a_still_queued_bulk_invitation(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "c1")
    started, [queued] = start_and_expand(session, org, inviter, ["c1"])
    assert session.get_one(BulkRun, started.run_id).queued == 1

    [new_id] = address_changes.handle_email_changed(session, email_event(session, org, "c1", NEW))
    session.commit()

    session.expire_all()
    old = session.get_one(Invitation, queued)
    assert (old.status, old.superseded_by_id) == (InvitationStatus.SUPERSEDED, new_id)
    run = session.get_one(BulkRun, started.run_id)
    assert (run.queued, run.status) == (0, BulkRunStatus.COMPLETED)  # nothing left in flight


def test_email_change_of_deactivated_user_waits_for_activation(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.DEACTIVATED)
    live = sent_invitation(session, user, EmailKind.CONFIRM_EMAIL)
    event_id = email_event(session, org, "c1", NEW)

    assert address_changes.handle_email_changed(session, event_id) == []
    session.commit()
    user = fresh(session, user)
    assert (user.status, user.email, user.pending_email) == (S.DEACTIVATED, NEW, NEW)
    assert [i.id for i in invitations_of(session, user)] == [live.id]  # no email now
    assert fresh(session, live).status == InvitationStatus.SUPERSEDED  # the old token dies
    assert_processed(session, event_id)

    with pytest.raises(InvalidTransition):  # still deactivated: nothing to confirm yet
        address_changes.after_activation(session, user.id)
    session.rollback()
    user = session.get_one(PortalUser, user.id)
    transition(session, user, Action.ACTIVATE)
    invitation_id = address_changes.after_activation(session, user.id)
    session.commit()

    user = fresh(session, user)
    assert (user.status, user.email, user.pending_email) == (S.LOGIN_SUSPENDED, NEW, None)
    new = session.get_one(Invitation, invitation_id)
    assert_new_invitation(new, user, EmailKind.CONFIRM_EMAIL, NEW, Channel.EMAIL)
    assert address_changes.after_activation(session, user.id) is None  # nothing pending


def test_email_change_of_record_without_portal_user_changes_only_the_record(
    session: Session,
) -> None:
    org = make_org(session)
    record = make_record(session, org, "c1")
    removed = make_user(session, org, "c2", S.REMOVED)
    first = email_event(session, org, "c1", NEW, "e1")
    second = email_event(session, org, "c2", NEW, "e2")

    assert address_changes.handle_email_changed(session, first) == []
    assert address_changes.handle_email_changed(session, second) == []
    session.commit()

    assert fresh(session, record).email == NEW
    assert fresh(session, removed).email == "c2@customer.example.org"
    assert session.scalar(select(func.count()).select_from(Invitation)) == 0
    assert_processed(session, first)
    assert_processed(session, second)


def test_the_same_event_delivered_twice_sends_one_email(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    first = email_event(session, org, "c1", NEW, "crm-42")
    again = email_event(session, org, "c1", NEW, "crm-42")  # the CRM retried its webhook
    assert first == again

    ids = address_changes.handle_email_changed(session, first)
    session.commit()
    assert address_changes.handle_email_changed(session, again) == []  # already processed
    session.commit()

    assert len(ids) == 1
    assert session.scalar(select(func.count()).select_from(CrmEvent)) == 1
    assert [i.id for i in invitations_of(session, user)] == ids


def test_a_bad_address_fails_the_event_and_changes_nothing(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    # The codes eligibility gives the same addresses (tests/invitations/test_eligibility.py).
    expected = {
        "sage weiser@example.org": ReasonCode.UNSUPPORTED_CHARACTERS,
        "sage@": ReasonCode.INVALID_ADDRESS,
        "ségolène@example.org": ReasonCode.UNSUPPORTED_CHARACTERS,
    }
    for n, (bad, code) in enumerate(expected.items()):
        event_id = email_event(session, org, "c1", bad, f"bad-{n}")
        assert address_changes.handle_email_changed(session, event_id) == []
        session.commit()
        event = session.get_one(CrmEvent, event_id)
        assert (event.status, event.result_code) == (CrmEventStatus.FAILED, code)
        assert event.processed_at is not None and bad in (event.detail or "")

    user = fresh(session, user)
    assert (user.status, user.email) == (S.CONFIRMED, "c1@customer.example.org")
    assert session.get_one(CrmRecord, user.record_id).email == "c1@customer.example.org"
    assert invitations_of(session, user) == []


def test_unknown_records_and_bad_payloads_fail_the_event(session: Session) -> None:
    org = make_org(session)
    missing = email_event(session, org, "nobody", NEW, "e1")
    event, _ = crm_events.record_event(
        session, org.id, CrmEventKind.EMAIL_CHANGED, "e2", {"record_id": "c1"}
    )
    session.commit()
    address_changes.handle_email_changed(session, missing)
    address_changes.handle_email_changed(session, event.id)
    session.commit()
    assert session.get_one(CrmEvent, missing).result_code == "record_missing"
    assert session.get_one(CrmEvent, event.id).result_code == "invalid_payload"
    with pytest.raises(NotFound):
        address_changes.handle_email_changed(session, 9999)
    with pytest.raises(InvalidInput, match=r"not record\.phone_changed"):
        address_changes.handle_phone_changed(session, missing)


def test_a_change_waits_while_an_invitation_is_being_sent(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.INVITED)
    sending = sent_invitation(session, user)
    sending.status = InvitationStatus.SENDING
    event_id = email_event(session, org, "c1", NEW)

    with pytest.raises(superseding.InvitationInFlight):
        address_changes.handle_email_changed(session, event_id)
    session.rollback()
    assert session.get_one(CrmEvent, event_id).status == CrmEventStatus.RECEIVED


# --- phone change --------------------------------------------------------------------------


def phone_world(session: Session, status: PortalUserStatus) -> tuple[Org, PortalUser]:
    org = make_org(session, country="IN", data_centre="in")
    agents = purchases.add_user_type_with_licences(
        session,
        org.id,
        name="Agents",
        module="Vendors",
        invitation_preference="phone",
        licences=1000,
    )
    user = make_user(
        session,
        org,
        "v1",
        status,
        user_type_id=agents.id,
        record={"module": "Vendors", "phone": "+919812345678"},
    )
    return org, user


def test_phone_change_reinvites_by_sms_to_the_new_number(session: Session) -> None:
    org, user = phone_world(session, S.CONFIRMED)
    old = sent_invitation(session, user)
    event_id = phone_event(session, org, "v1", "098765 43210")

    ids = address_changes.handle_phone_changed(session, event_id)
    session.commit()

    user = fresh(session, user)
    # Still confirmed, but the login is the new number only.
    assert (user.status, user.phone) == (S.CONFIRMED, "+919876543210")
    assert session.get_one(CrmRecord, user.record_id).phone == "+919876543210"
    first, new = invitations_of(session, user)
    assert ids == [new.id] and first.id == old.id
    assert (first.status, first.superseded_by_id) == (InvitationStatus.SUPERSEDED, new.id)
    assert_new_invitation(new, user, EmailKind.ACCEPT_INVITATION, "+919876543210", Channel.SMS)
    assert_processed(session, event_id)


def test_phone_change_refuses_a_number_outside_india(session: Session) -> None:
    org, user = phone_world(session, S.INVITED)
    event_id = phone_event(session, org, "v1", "+1 650 253 0000")

    assert address_changes.handle_phone_changed(session, event_id) == []
    session.commit()

    event = session.get_one(CrmEvent, event_id)
    assert (event.status, event.result_code) == (CrmEventStatus.FAILED, "unsupported_country")
    user = fresh(session, user)
    assert (user.status, user.phone) == (S.INVITED, "+919812345678")
    assert session.get_one(CrmRecord, user.record_id).phone == "+919812345678"
    assert invitations_of(session, user) == []


# --- through the workers -------------------------------------------------------------------


def test_duplicated_event_through_redis_worker_sends_one_email(
    worker: Worker,
    redis_broker: RedisBroker,
    worker_settings: Settings,
    pg_engine: Engine,
) -> None:
    with make_session_factory(pg_engine)() as session:
        org = make_org(session)
        user = make_user(session, org, "c1", S.CONFIRMED)
        event_id = email_event(session, org, "c1", NEW, "crm-7")
        user_id = user.id
    address_actors.handle_crm_event.send(event_id)
    address_actors.handle_crm_event.send(event_id)  # delivered twice
    redis_broker.join(address_actors.CRM_EVENTS_QUEUE, timeout=30_000)
    redis_broker.join(actors.INVITATIONS_QUEUE, timeout=30_000)
    outbox = worker_settings.outbox_dir

    def sent() -> bool:
        with make_session_factory(pg_engine)() as session:
            statuses = session.scalars(select(Invitation.status)).all()
            return statuses == [InvitationStatus.SENT]

    wait_for(sent)
    redis_broker.join(actors.INVITATIONS_QUEUE, timeout=30_000)

    [eml] = list(outbox.glob("*.eml"))
    assert NEW.encode() in eml.read_bytes()
    with make_session_factory(pg_engine)() as session:
        assert session.get_one(PortalUser, user_id).status == S.LOGIN_SUSPENDED
        [invitation] = session.scalars(select(Invitation)).all()
        assert (invitation.kind, invitation.status) == (
            EmailKind.CONFIRM_EMAIL,
            InvitationStatus.SENT,
        )
        assert_processed(session, event_id)


class _Enqueued(Middleware):
    """The actor names of the messages the broker enqueues."""

    def __init__(self) -> None:
        self.actors: list[str] = []

    def after_enqueue(self, broker: Any, message: Message, delay: Any) -> None:
        self.actors.append(message.actor_name)


def test_the_event_actor_sends_the_confirmation_itself_one_queue_hop(
    worker: Worker,
    redis_broker: RedisBroker,
    worker_settings: Settings,
    pg_engine: Engine,
) -> None:
    enqueued = _Enqueued()
    redis_broker.add_middleware(enqueued)
    with make_session_factory(pg_engine)() as session:
        org = make_org(session)
        make_user(session, org, "c1", S.CONFIRMED)
        event_id = email_event(session, org, "c1", NEW, "crm-8")
    address_actors.handle_crm_event.send(event_id)
    redis_broker.join(address_actors.CRM_EVENTS_QUEUE, timeout=30_000)

    # Sent by the time its event's message is done: no second message on another queue.
    [eml] = list(worker_settings.outbox_dir.glob("*.eml"))
    assert NEW.encode() in eml.read_bytes()
    assert enqueued.actors == ["handle_crm_event"]
    with make_session_factory(pg_engine)() as session:
        assert session.scalars(select(Invitation.status)).all() == [InvitationStatus.SENT]


def test_a_send_that_cannot_start_in_the_event_actor_goes_to_the_queue(
    worker: Worker,
    redis_broker: RedisBroker,
    worker_settings: Settings,
    pg_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enqueued = _Enqueued()
    redis_broker.add_middleware(enqueued)
    real_dispatch = dispatch.dispatch
    calls: list[int] = []

    def database_away_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real_dispatch(*args, **kwargs)

    monkeypatch.setattr(dispatch, "dispatch", database_away_once)
    with make_session_factory(pg_engine)() as session:
        org = make_org(session)
        make_user(session, org, "c1", S.CONFIRMED)
        event_id = email_event(session, org, "c1", NEW, "crm-9")
    address_actors.handle_crm_event.send(event_id)
    redis_broker.join(address_actors.CRM_EVENTS_QUEUE, timeout=30_000)
    redis_broker.join(actors.INVITATIONS_QUEUE, timeout=30_000)

    assert enqueued.actors == ["handle_crm_event", "dispatch_invitation"]
    [eml] = list(worker_settings.outbox_dir.glob("*.eml"))
    assert NEW.encode() in eml.read_bytes()
    with make_session_factory(pg_engine)() as session:
        assert session.scalars(select(Invitation.status)).all() == [InvitationStatus.SENT]
        assert_processed(session, event_id)


def test_malformed_messages_are_not_retried_and_bad_events_fail_cleanly(
    worker: Worker, redis_broker: RedisBroker, pg_engine: Engine
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        org = make_org(session)
        event, _ = crm_events.record_event(
            session, org.id, CrmEventKind.LEAD_CONVERTED, "lead-1", {"lead_id": "L1"}
        )
        session.commit()
    address_actors.handle_crm_event.send(event.id)  # a lead.converted without its contact
    address_actors.handle_crm_event.send("1")
    redis_broker.join(address_actors.CRM_EVENTS_QUEUE, timeout=30_000)
    queue = f"{redis_broker.namespace}:{address_actors.CRM_EVENTS_QUEUE}.XQ"
    assert redis_broker.client.zcard(queue) == 1  # the malformed message, dead-lettered at once
    with factory() as session:
        stored = session.get_one(CrmEvent, event.id)
        assert (stored.status, stored.result_code) == (CrmEventStatus.FAILED, "invalid_payload")


def test_cli_email_changed_sends_the_confirmation_embedded(cli_env: Path, tmp_path: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    assert code == 0, out
    records = tmp_path / "records.jsonl"
    records.write_text(
        '{"crm_id": "A1", "module": "Contacts", "first_name": "Ana", "email": "ana@example.org"}\n',
        encoding="utf-8",
    )
    assert run("records", "import", str(records), "--org", "1")[0] == 0
    engine = make_engine(Settings.from_env().database_url)
    with make_session_factory(engine)() as session:
        record = session.scalars(select(CrmRecord)).one()
        session.add(
            PortalUser(
                org_id=1,
                record_id=record.id,
                user_type_id=1,
                status=S.CONFIRMED,
                email="ana@example.org",
            )
        )
        session.commit()

    args = ("events", "email-changed", "--org", "1", "--record", "A1", "--email", NEW)
    code, out = run(*args, "--event-id", "crm-1")
    assert code == 0, out
    assert "processed" in out and "login suspended" in out
    [eml] = list((cli_env / "outbox").glob("*.eml"))
    assert NEW.encode() in eml.read_bytes()

    code, out = run(*args, "--event-id", "crm-1")  # the same event again: nothing more sent
    assert code == 0 and "received before" in out
    assert len(list((cli_env / "outbox").glob("*.eml"))) == 1

    code, out = run("events", "email-changed", "--org", "1", "--record", "A1", "--email", "x@")
    assert code == 1 and "invalid_address" in out and "Event id:" in out
    with make_session_factory(engine)() as session:
        user = session.scalars(select(PortalUser)).one()
        assert (user.status, user.email) == (S.LOGIN_SUSPENDED, NEW)
    engine.dispose()
