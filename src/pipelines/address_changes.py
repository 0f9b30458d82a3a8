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

Every change supersedes the user's open invitations, so no token sent to the old address
still works. Each handler runs an event once: an event that is not ``received`` any more
is left alone, so the same event delivered twice sends one message. Handlers flush and
return the invitation ids to dispatch; the caller commits, then enqueues them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    Channel,
    CrmEvent,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationPreference,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    ReasonCode,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm_webhooks import outbox

from . import addresses, bulk, crm_events, phones
from .errors import InvalidInput, NotFound
from .invitation_states import Transition, initial_status, move_ids
from .lifecycle import Action, transition
from .rendering import FALLBACK_LANGUAGE, SUPPORTED_LANGUAGES

S = PortalUserStatus
INVALID_PAYLOAD = "invalid_payload"
# Open invitations an address change kills: not sent yet (queued), or sent and live.
_SUPERSEDABLE = (InvitationStatus.QUEUED, InvitationStatus.SENT)


class InvitationInFlight(RuntimeError):
    """An invitation of the user is being sent right now; apply the change a bit later.

    Not a PortalflowError: nothing is wrong with the event, so the actor's retries (with
    backoff) run it again once the send has finished or its claim has expired.
    """


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
    _refuse_if_sending(session, user)
    record = session.get_one(CrmRecord, user.record_id)
    transition(session, user, Action.SUSPEND_LOGIN, now)  # refused unless now confirmed
    user.email = user.pending_email
    user.pending_email = None
    return _reinvite(session, user, record, EmailKind.CONFIRM_EMAIL, Channel.EMAIL, now)


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
    _refuse_if_sending(session, user)
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
        _refuse_if_sending(session, user)
    record.email = email
    if user is None:
        return [], f"record {record.crm_id} updated; no portal user logs in with this email"
    user.email = email
    if user.status in (S.CONFIRMED, S.LOGIN_SUSPENDED):
        transition(session, user, Action.SUSPEND_LOGIN, now)
        new_id = _reinvite(session, user, record, EmailKind.CONFIRM_EMAIL, Channel.EMAIL, now)
        return [new_id], f"portal user {user.id} login suspended; confirmation sent to {email}"
    if user.status == S.INVITED:
        new_id = _reinvite(session, user, record, EmailKind.ACCEPT_INVITATION, Channel.EMAIL, now)
        return [new_id], f"portal user {user.id} invited again at {email}"
    # Deactivated: confirmed when the user is activated (after_activation).
    user.pending_email = email
    _supersede(session, user, None, now)
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
    _refuse_if_sending(session, user)
    record.phone = phone
    user.phone = phone
    if user.status == S.DEACTIVATED:
        _supersede(session, user, None, now)
        return [], f"portal user {user.id} is deactivated; {phone} is its login when activated"
    new_id = _reinvite(session, user, record, EmailKind.ACCEPT_INVITATION, Channel.SMS, now)
    return [new_id], f"portal user {user.id} invited again by SMS at {phone}"


# --- helpers ---------------------------------------------------------------------------


def _check_email(email: str) -> None:
    if not addresses.has_only_allowed_characters(email):
        raise AddressChangeRefused(
            ReasonCode.INVALID_ADDRESS.value,
            f"{email!r} has characters other than A-Z a-z 0-9 and @ . - _ +",
        )
    if not addresses.is_well_formed(email):
        raise AddressChangeRefused(
            ReasonCode.INVALID_ADDRESS.value, f"{email!r} is not a valid address"
        )


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
        raise AddressChangeRefused(INVALID_PAYLOAD, f"the event payload needs a non-empty {name!r}")
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


def _open_invitations(session: Session, user: PortalUser) -> Sequence[Invitation]:
    """The user's queued, sending and sent invitations, locked against a concurrent claim."""
    return session.scalars(
        select(Invitation)
        .where(
            Invitation.portal_user_id == user.id,
            Invitation.status.in_((*_SUPERSEDABLE, InvitationStatus.SENDING)),
        )
        .order_by(Invitation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def _refuse_if_sending(session: Session, user: PortalUser) -> None:
    sending = [
        i.id for i in _open_invitations(session, user) if i.status == InvitationStatus.SENDING
    ]
    if sending:
        raise InvitationInFlight(
            f"invitation {sending[0]} to portal user {user.id} is being sent; try again later"
        )


def _reinvite(
    session: Session,
    user: PortalUser,
    record: CrmRecord,
    kind: EmailKind,
    channel: Channel,
    now: datetime,
) -> int:
    """A new queued invitation to the user's current address; the older ones superseded."""
    language = user.language if user.language in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE
    invitation = Invitation(
        org_id=user.org_id,
        user_type_id=user.user_type_id,
        bulk_run_id=None,
        crm_id=record.crm_id,
        record_id=record.id,
        portal_user_id=user.id,
        kind=kind,
        channel=channel,
        language=language,
        address=user.phone if channel == Channel.SMS else user.email,
        status=initial_status(Transition.ENQUEUE),
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(invitation)
    session.flush()
    _supersede(session, user, invitation.id, now)
    outbox.invitation_events(
        session, WebhookEventType.INVITATION_QUEUED, [invitation.id], org_id=user.org_id, now=now
    )
    return invitation.id


def _supersede(session: Session, user: PortalUser, by_id: int | None, now: datetime) -> None:
    """Kill the user's queued and sent invitations (except ``by_id``); fix their runs' totals.

    A queued invitation of a bulk run leaves the run's in-flight count, so the run can
    still complete.
    """
    stale = [i for i in _open_invitations(session, user) if i.id != by_id]
    if not stale:
        return
    for invitation in stale:
        assert invitation.status != InvitationStatus.SENDING  # _refuse_if_sending ran first
        if invitation.status == InvitationStatus.QUEUED and invitation.bulk_run_id is not None:
            session.execute(
                update(BulkRun)
                .where(BulkRun.id == invitation.bulk_run_id)
                .values(queued=BulkRun.queued - 1)
                .execution_options(synchronize_session=False)
            )
    session.execute(
        move_ids(
            Transition.SUPERSEDE,
            [invitation.id for invitation in stale],
            values={"superseded_by_id": by_id, "updated_at": now},
        )
    )
    for invitation in stale:
        session.expire(invitation)  # the UPDATE went around the ORM
    run_ids = {i.bulk_run_id for i in stale if i.bulk_run_id is not None}
    if run_ids:
        bulk.finish_if_done(session, run_ids)
