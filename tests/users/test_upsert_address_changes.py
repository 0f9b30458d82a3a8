"""A new email or phone arriving as ``record.upserted`` takes the address-change flow; every
event names its record ``record_id`` (``crm_id`` / ``crm_ids`` still accepted, deprecated)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from portalflow import events
from portalflow.models import (
    BulkRun,
    Channel,
    CrmEvent,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    EmailKind,
    InvitationStatus,
    Org,
    PortalUserStatus,
)
from portalflow.pipelines.crm import crm_events, intake
from portalflow.pipelines.users import superseding
from portalflow.workers.address_actors import HANDLERS

from ..factories import client_portal, make_inviter, make_org, make_record
from .test_address_changes import (
    NEW,
    assert_new_invitation,
    assert_processed,
    fresh,
    invitations_of,
    make_user,
    phone_world,
    sent_invitation,
)

S = PortalUserStatus


def upsert_event(session: Session, org: Org, data: dict[str, Any], key: str = "up-1") -> int:
    """Validated as ``POST /events`` validates it, then stored as it stores it."""
    event = events.validate(key, "record.upserted", data)
    payload = event.data.model_dump(mode="json", exclude_unset=True)
    row, _ = crm_events.record_event(session, org.id, CrmEventKind.RECORD_UPSERTED, key, payload)
    session.commit()
    return row.id


def test_an_upserted_email_of_a_confirmed_user_suspends_login_and_sends_confirmation(
    session: Session,
) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    data = {"record_id": "c1", "module": "Contacts", "first_name": "Ada", "email": NEW}
    event_id = upsert_event(session, org, data)

    ids = HANDLERS[CrmEventKind.RECORD_UPSERTED](session, event_id, None)
    session.commit()

    user = fresh(session, user)
    assert (user.status, user.email) == (S.LOGIN_SUSPENDED, NEW)
    record = session.get_one(CrmRecord, user.record_id)
    assert (record.email, record.first_name) == (NEW, "Ada")  # the other fields still load
    [new] = invitations_of(session, user)
    assert ids == [new.id]
    assert_new_invitation(new, user, EmailKind.CONFIRM_EMAIL, NEW, Channel.EMAIL)
    detail = assert_processed(session, event_id).detail or ""
    assert detail.startswith("updated;") and "login suspended" in detail


def test_an_upserted_email_of_an_invited_user_invites_again_at_it(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.INVITED)
    old = sent_invitation(session, user)
    event_id = upsert_event(session, org, {"record_id": "c1", "module": "Contacts", "email": NEW})

    ids = intake.handle_record_upserted(session, event_id)
    session.commit()

    first, new = invitations_of(session, user)
    assert first.id == old.id and ids == [new.id]
    assert (first.status, first.superseded_by_id) == (InvitationStatus.SUPERSEDED, new.id)
    assert_new_invitation(
        new, fresh(session, user), EmailKind.ACCEPT_INVITATION, NEW, Channel.EMAIL
    )


def test_an_upsert_with_the_users_own_email_sends_nothing(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    same = user.email.upper()
    data = {"record_id": "c1", "module": "Contacts", "email": same, "last_name": "Lovelace"}
    event_id = upsert_event(session, org, data)

    assert intake.handle_record_upserted(session, event_id) == []
    session.commit()

    assert fresh(session, user).status == S.CONFIRMED
    assert session.get_one(CrmRecord, user.record_id).last_name == "Lovelace"
    assert invitations_of(session, user) == []
    assert assert_processed(session, event_id).detail == "updated"


def test_a_bad_upserted_email_of_a_portal_user_fails_the_event_and_changes_nothing(
    session: Session,
) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    before = user.email
    data = {"record_id": "c1", "module": "Contacts", "first_name": "Ada", "email": "a b@x.org"}
    event_id = upsert_event(session, org, data)

    assert intake.handle_record_upserted(session, event_id) == []
    session.commit()

    event = session.get_one(CrmEvent, event_id)
    # A space is a character outside the allowed set: the code eligibility gives it too.
    assert (event.status, event.result_code) == (CrmEventStatus.FAILED, "unsupported_characters")
    record = session.get_one(CrmRecord, user.record_id)
    assert (record.email, record.first_name) == (before, "Sage")
    assert fresh(session, user).status == S.CONFIRMED


def test_an_upserted_phone_of_a_phone_user_reinvites_by_sms(session: Session) -> None:
    org, user = phone_world(session, S.CONFIRMED)
    data = {"record_id": "v1", "module": "Vendors", "phone": "098765 43210", "email": NEW}
    event_id = upsert_event(session, org, data)

    ids = intake.handle_record_upserted(session, event_id)
    session.commit()

    user = fresh(session, user)
    assert (user.status, user.phone) == (S.CONFIRMED, "+919876543210")
    record = session.get_one(CrmRecord, user.record_id)
    # The number is stored normalised; the email of a phone user is only the record's.
    assert (record.phone, record.email) == ("+919876543210", NEW)
    [new] = invitations_of(session, user)
    assert ids == [new.id]
    assert_new_invitation(new, user, EmailKind.ACCEPT_INVITATION, "+919876543210", Channel.SMS)


def test_an_upserted_email_of_a_record_without_portal_user_only_changes_the_record(
    session: Session,
) -> None:
    org = make_org(session)
    make_record(session, org, "c9")
    event_id = upsert_event(session, org, {"record_id": "c9", "module": "Contacts", "email": NEW})

    assert intake.handle_record_upserted(session, event_id) == []
    session.commit()

    assert assert_processed(session, event_id).detail == "updated"


def test_an_upsert_waits_while_an_invitation_of_the_user_is_being_sent(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.INVITED)
    sent_invitation(session, user).status = InvitationStatus.SENDING
    data = {"record_id": "c1", "module": "Contacts", "email": NEW, "first_name": "Ada"}
    event_id = upsert_event(session, org, data)

    with pytest.raises(superseding.InvitationInFlight):
        intake.handle_record_upserted(session, event_id)
    session.rollback()

    assert session.get_one(CrmEvent, event_id).status == CrmEventStatus.RECEIVED
    assert session.get_one(CrmRecord, user.record_id).first_name == "Sage"


# --- one name for the record ---------------------------------------------------------------


def test_the_deprecated_crm_id_is_accepted_and_stored_as_record_id(session: Session) -> None:
    org = make_org(session)
    user = make_user(session, org, "c1", S.CONFIRMED)
    event_id = upsert_event(session, org, {"crm_id": "c1", "module": "Contacts", "email": NEW})
    assert session.get_one(CrmEvent, event_id).payload == {
        "record_id": "c1",
        "module": "Contacts",
        "email": NEW,
    }
    assert len(intake.handle_record_upserted(session, event_id)) == 1
    session.commit()
    assert fresh(session, user).email == NEW


def test_an_event_stored_under_the_old_name_is_still_applied(session: Session) -> None:
    org = make_org(session)
    legacy, _ = crm_events.record_event(
        session, org.id, CrmEventKind.RECORD_UPSERTED, "old", {"crm_id": "c5", "module": "Leads"}
    )
    session.commit()
    intake.handle_record_upserted(session, legacy.id)
    session.commit()
    assert assert_processed(session, legacy.id).detail == "created"


def test_invitation_requested_takes_record_ids_and_the_deprecated_crm_ids(
    session: Session,
) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "c1")
    make_record(session, org, "c2")
    base = {"user_type_id": client_portal(session, org).id, "inviter_id": inviter.id}
    runs = []
    for key, ids in (("new", {"record_ids": ["c1"]}), ("old", {"crm_ids": ["c2"]})):
        event = events.validate(key, "invitation.requested", {**base, **ids})
        payload = event.data.model_dump(mode="json", exclude_unset=True)
        assert payload["record_ids"] == ids.get("record_ids", ids.get("crm_ids"))
        assert "crm_ids" not in payload
        row, _ = crm_events.record_event(
            session, org.id, CrmEventKind.INVITATION_REQUESTED, key, payload
        )
        session.commit()
        assert intake.handle_invitation_requested(session, row.id)
        session.commit()
        runs.append(session.get_one(BulkRun, intake.bulk_run_of(row)))
    assert [run.requested for run in runs] == [1, 1]


def test_both_names_with_different_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="deprecated name of record_id"):
        events.validate("e", "record.upserted", {"crm_id": "a", "record_id": "b", "module": "M"})
    same = events.validate("e", "record.upserted", {"crm_id": "a", "record_id": "a", "module": "M"})
    assert same.data.record_id == "a"
    with pytest.raises(ValidationError):  # never an accepted name of the other events
        events.validate("e", "record.deleted", {"crm_id": "a"})


def test_the_schema_marks_the_old_names_deprecated() -> None:
    schema = events.RecordUpserted.model_json_schema()
    assert "record_id" in schema["required"] and schema["properties"]["crm_id"]["deprecated"]
    requested = events.InvitationRequested.model_json_schema()
    assert requested["properties"]["crm_ids"]["deprecated"]
    assert "record_ids" in requested["required"]
