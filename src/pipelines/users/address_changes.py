"""Address changes from the CRM: what an email or phone change does to a portal user.

Email (email-preference types), by the user's status:

- confirmed or login suspended: the new address is stored, the user becomes login
  suspended, and a *confirm email address* email goes to the new address;
- invited (not yet accepted): the new address is stored, the status stays, the old
  invitation is superseded and a new accept-invitation email goes to the new address;
- deactivated: the new address is stored (also as ``pending_email``) and nothing is sent;
  :func:`after_activation` sends the confirmation once the user is activated;
- no portal user (or a removed one): only the record changes.

Phone (phone-preference types): the number is normalised to E.164 (Indian mobiles only),
stored, and the user is re-invited by SMS to it; a confirmed user stays confirmed and logs
in with the new number only (``PortalUser.phone``). A deactivated user gets the number
without an SMS.

A ``record.upserted`` event that carries a new email or phone for a record with a portal
user takes the same flow (:func:`check_upserted`, then :func:`apply_upserted`), so the record
and the user never silently disagree.

Every change supersedes the user's open invitations (``superseding``), so no token sent to
the old address still works. Each handler runs an event once: an event that is not
``received`` any more is left alone, so the same event delivered twice sends one message.
Handlers flush and return the invitation ids to dispatch; the caller commits, then enqueues
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    Channel,
    CrmEvent,
    CrmEventCode,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    EmailKind,
    InvitationPreference,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    ReasonCode,
    SessionEndReason,
    utcnow,
)
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.signin import sessions

from . import addresses, phones
from .lifecycle import Action, transition
from .superseding import (
    refuse_if_sending,
    reinvite_to_new_address,
    supersede_open,
)

S = PortalUserStatus


class AddressChangeRefused(Exception):
    """The event cannot be applied: it is marked failed with ``code``, nothing else changes."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class LoginChange:
    """The login address fields a ``record.upserted`` event changes for a portal user."""

    record: CrmRecord
    user: PortalUser
    fields: tuple[str, ...]  # "email" and/or "phone": applied here, not by the record import


def handle_email_changed(session: Session, event_id: int, now: datetime | None = None) -> list[int]:
    """Apply a ``record.email_changed`` event ``{"record_id", "email"}``; ids to dispatch."""
    return _handle(session, event_id, CrmEventKind.EMAIL_CHANGED, "email", _apply_email, now)


def handle_phone_changed(session: Session, event_id: int, now: datetime | None = None) -> list[int]:
    """Apply a ``record.phone_changed`` event ``{"record_id", "phone"}``; ids to dispatch."""
    return _handle(session, event_id, CrmEventKind.PHONE_CHANGED, "phone", _apply_phone, now)


def after_activation(
    session: Session, portal_user_id: int, now: datetime | None = None
) -> int | None:
    """Send the confirmation of an email change that reached the user while deactivated.

    Call it right after activating the user (flushed, not committed). With a pending
    address the user becomes login suspended and a queued confirm-email invitation to it
    is written; returns its id (the caller commits, then enqueues it), or None when there
    was nothing pending.
    """
    now = now or utcnow()
    user = session.get(PortalUser, portal_user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFound(f"portal user {portal_user_id} does not exist")
    if not user.pending_email:
        return None
    refuse_if_sending(session, user)
    record = session.get_one(CrmRecord, user.record_id)
    transition(session, user, Action.SUSPEND_LOGIN, now)  # refused unless now confirmed
    user.email = user.pending_email
    user.pending_email = None
    return reinvite_to_new_address(
        session, user, record, EmailKind.CONFIRM_EMAIL, Channel.EMAIL, now
    )


def check_upserted(session: Session, event: CrmEvent, crm_id: str) -> LoginChange | None:
    """What a ``record.upserted`` event changes of its portal user's login; None if nothing.

    Locks the record and its user. A new address for the user's invitation preference
    (email for email types, phone for phone types) is checked as the change events check
    it, raising AddressChangeRefused (nothing changed yet), or InvitationInFlight while
    one of the user's invitations is being sent. An empty value only clears the record.
    """
    record = session.scalar(
        select(CrmRecord)
        .where(CrmRecord.org_id == event.org_id, CrmRecord.crm_id == crm_id)
        .with_for_update()
    )
    user = _portal_user(session, record) if record is not None else None
    if record is None or user is None:
        return None
    payload = event.payload if isinstance(event.payload, dict) else {}
    preference = _preference(session, user)
    fields: list[str] = []
    email = _given_text(payload, "email")
    if (
        preference == InvitationPreference.EMAIL
        and email is not None
        and not _same_email(user.pending_email or user.email, email)
    ):
        _check_email(email)
        fields.append("email")
    phone = _given_text(payload, "phone")
    if (
        preference == InvitationPreference.PHONE
        and phone is not None
        and _indian_mobile(phone) != user.phone
    ):
        fields.append("phone")
    if not fields:
        return None
    refuse_if_sending(session, user)
    return LoginChange(record, user, tuple(fields))


def apply_upserted(
    session: Session, event: CrmEvent, change: LoginChange, now: datetime
) -> tuple[list[int], str]:
    """Apply a :func:`check_upserted` change as the change events do; ids to dispatch, detail."""
    appliers = {"email": _apply_email, "phone": _apply_phone}
    ids: list[int] = []
    details: list[str] = []
    for field in change.fields:
        new_ids, detail = appliers[field](session, event, change.record, change.user, now)
        ids += new_ids
        details.append(detail)
    return ids, "; ".join(details)


# --- the handlers ----------------------------------------------------------------------


_Apply = Callable[
    [Session, CrmEvent, CrmRecord, PortalUser | None, datetime], tuple[list[int], str]
]


def _handle(
    session: Session,
    event_id: int,
    kind: CrmEventKind,
    field: str,
    apply: _Apply,
    now: datetime | None,
) -> list[int]:
    now = now or utcnow()
    event = crm_events.get_event(session, event_id, lock=True)
    if event.kind != kind:
        raise InvalidInput(f"CRM event {event_id} is {event.kind.value}, not {kind.value}")
    if event.status != CrmEventStatus.RECEIVED:
        return []  # already handled: a redelivery changes and sends nothing
    try:
        _payload_text(event.payload, field)  # a malformed payload fails before any lookup
        record = _record(session, event)
        user = _portal_user(session, record)
        ids, detail = apply(session, event, record, user, now)
    except AddressChangeRefused as refused:
        crm_events.mark_failed(event, refused.code, refused.detail, now)
        session.flush()
        return []
    crm_events.mark_processed(event, detail, now)
    session.flush()
    return ids


def _apply_email(
    session: Session,
    event: CrmEvent,
    record: CrmRecord,
    user: PortalUser | None,
    now: datetime,
) -> tuple[list[int], str]:
    email = _payload_text(event.payload, "email")
    _check_email(email)
    if user is not None and _preference(session, user) != InvitationPreference.EMAIL:
        user = None  # a phone-preference user logs in with the phone: only the record moves
    current = (user.pending_email or user.email) if user is not None else None
    if user is not None and _same_email(current, email):
        record.email = email
        return [], f"{email} is already the address of portal user {user.id}; nothing sent"
    if user is not None:
        refuse_if_sending(session, user)
    record.email = email
    if user is None:
        return [], f"record {record.crm_id} updated; no portal user logs in with this email"
    user.email = email
    if user.status in (S.CONFIRMED, S.LOGIN_SUSPENDED):
        transition(session, user, Action.SUSPEND_LOGIN, now)
        new_id = reinvite_to_new_address(
            session, user, record, EmailKind.CONFIRM_EMAIL, Channel.EMAIL, now
        )
        return [new_id], f"portal user {user.id} login suspended; confirmation sent to {email}"
    if user.status == S.INVITED:
        new_id = reinvite_to_new_address(
            session, user, record, EmailKind.ACCEPT_INVITATION, Channel.EMAIL, now
        )
        return [new_id], f"portal user {user.id} invited again at {email}"
    # Deactivated: confirmed when the user is activated (after_activation).
    user.pending_email = email
    supersede_open(session, user, None, now)
    return [], f"portal user {user.id} is deactivated; {email} is confirmed on activation"


def _apply_phone(
    session: Session,
    event: CrmEvent,
    record: CrmRecord,
    user: PortalUser | None,
    now: datetime,
) -> tuple[list[int], str]:
    raw = _payload_text(event.payload, "phone")
    if user is None or _preference(session, user) != InvitationPreference.PHONE:
        record.phone = raw
        return [], f"record {record.crm_id} updated; no portal user logs in with this phone"
    phone = _indian_mobile(raw)
    if user.phone == phone:
        record.phone = phone
        return [], f"{phone} is already the number of portal user {user.id}; nothing sent"
    refuse_if_sending(session, user)
    record.phone = phone
    user.phone = phone
    # Only the new number signs in now: sessions opened with the old one end.
    sessions.end_for_users(session, [user.id], SessionEndReason.ADDRESS_CHANGED, now)
    if user.status == S.DEACTIVATED:
        supersede_open(session, user, None, now)
        return [], f"portal user {user.id} is deactivated; {phone} is its login when activated"
    new_id = reinvite_to_new_address(
        session, user, record, EmailKind.ACCEPT_INVITATION, Channel.SMS, now
    )
    return [new_id], f"portal user {user.id} invited again by SMS at {phone}"


# --- helpers ---------------------------------------------------------------------------


def _check_email(email: str) -> None:
    problem = addresses.email_problem(email)
    if problem is not None:
        code, detail = problem
        raise AddressChangeRefused(code.value, f"{email!r}: {detail}")


def _indian_mobile(raw: str) -> str:
    """``raw`` in E.164, or refused with the reason it is not an Indian mobile number."""
    verdict = phones.indian_mobile(raw)
    if verdict.e164 is None:
        assert verdict.reason is not None
        raise AddressChangeRefused(
            verdict.reason.value, verdict.detail or "not an Indian mobile number"
        )
    return verdict.e164


def _given_text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _payload_text(payload: Any, name: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise AddressChangeRefused(
            CrmEventCode.INVALID_PAYLOAD, f"the event payload needs a non-empty {name!r}"
        )
    return value.strip()


def _record(session: Session, event: CrmEvent) -> CrmRecord:
    crm_id = _payload_text(event.payload, "record_id")
    record = session.scalar(
        select(CrmRecord)
        .where(CrmRecord.org_id == event.org_id, CrmRecord.crm_id == crm_id)
        .with_for_update()
    )
    if record is None:
        raise AddressChangeRefused(
            ReasonCode.RECORD_MISSING.value,
            f"record {crm_id} does not exist in org {event.org_id}",
        )
    return record


def _portal_user(session: Session, record: CrmRecord) -> PortalUser | None:
    """The record's portal user, locked, unless it has none or it was removed."""
    user = session.scalar(
        select(PortalUser)
        .where(PortalUser.record_id == record.id, PortalUser.status != S.REMOVED)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return user


def _preference(session: Session, user: PortalUser) -> InvitationPreference:
    return session.get_one(PortalUserType, user.user_type_id).invitation_preference


def _same_email(a: str | None, b: str) -> bool:
    return a is not None and a.casefold() == b.casefold()
