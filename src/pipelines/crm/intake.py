"""Applying the CRM events that arrive over HTTP: record upserts, deletes, restores and
invitation requests.

Each handler runs an event once: it locks the event, leaves one that is not ``received``
any more alone (a redelivery does nothing), applies it through the same pipeline the CLI
uses, marks it processed or failed (with a stable code) and flushes; the caller commits,
then enqueues what the handler returned.

- :func:`handle_record_upserted`, :func:`handle_record_deleted` and
  :func:`handle_record_restored` have the address-change handlers' shape (invitation ids to
  dispatch). An upsert that gives a portal user's record a new email or phone runs the
  address-change flow of ``record.email_changed`` / ``record.phone_changed`` for it;
- every event names its record ``record_id`` (a list: ``record_ids``); events stored under
  the deprecated ``crm_id`` / ``crm_ids`` are still read;
- :func:`handle_invitation_requested` writes a bulk run and returns its *chunk* ids, which
  the caller enqueues to the bulk-invite actor after the commit. The run id is recorded in
  the event's detail (``bulk_run=<id>``) so the CRM can read the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    CrmEvent,
    CrmEventCode,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    utcnow,
)
from portalflow.pipelines.errors import InvalidInput, PortalflowError
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.users import address_changes

from . import crm_events, records


def _open(session: Session, event_id: int, kind: CrmEventKind) -> CrmEvent | None:
    """The locked event, or None when it was handled already."""
    event = crm_events.get_event(session, event_id, lock=True)
    if event.kind != kind:
        raise InvalidInput(f"CRM event {event_id} is {event.kind.value}, not {kind.value}")
    if event.status != CrmEventStatus.RECEIVED:
        return None
    return event


def _payload(event: CrmEvent) -> dict[str, Any]:
    if not isinstance(event.payload, dict):
        raise InvalidInput("the payload must be a JSON object")
    return event.payload


def handle_record_upserted(
    session: Session, event_id: int, now: datetime | None = None
) -> list[int]:
    """Create or update one record from ``{"record_id", "module", ...}`` (only given fields).

    A new email or phone for the record's portal user (by its invitation preference) takes
    the address-change flow: returns the invitation ids to dispatch after the commit.
    """
    now = now or utcnow()
    event = _open(session, event_id, CrmEventKind.RECORD_UPSERTED)
    if event is None:
        return []
    try:
        row = dict(_payload(event))
        crm_id = _record_id(row)
        if crm_id is None:
            raise InvalidInput("record_id must be a CRM id")
        change = address_changes.check_upserted(session, event, crm_id)
    except PortalflowError as exc:
        return _failed(session, event, CrmEventCode.INVALID_PAYLOAD, str(exc), now)
    except address_changes.AddressChangeRefused as refused:
        return _failed(session, event, refused.code, refused.detail, now)
    for field in change.fields if change is not None else ():
        row.pop(field)  # stored by the address-change flow (a phone normalised to E.164)
    report = records.import_records(session, event.org_id, [(1, {**row, "crm_id": crm_id})])
    if report.errors:
        return _failed(session, event, CrmEventCode.INVALID_PAYLOAD, report.errors[0].message, now)
    detail = "created" if report.created else "updated"
    ids: list[int] = []
    if change is not None:
        ids, changed = address_changes.apply_upserted(session, event, change, now)
        detail = f"{detail}; {changed}"
    crm_events.mark_processed(event, detail, now)
    session.flush()
    return ids


def _record_id(payload: dict[str, Any]) -> str | None:
    """The event's ``record_id`` (or the deprecated ``crm_id``), taken out of ``payload``."""
    values = [payload.pop(name, None) for name in ("record_id", "crm_id")]
    crm_id = next((value for value in values if value is not None), None)
    return crm_id.strip() if isinstance(crm_id, str) and crm_id.strip() else None


def _failed(session: Session, event: CrmEvent, code: str, detail: str, now: datetime) -> list[int]:
    crm_events.mark_failed(event, code, detail, now)
    session.flush()
    return []


def handle_record_deleted(
    session: Session, event_id: int, now: datetime | None = None
) -> list[int]:
    """Mark the org's record ``{"record_id"}`` deleted (its portal user is left as is)."""
    return _set_deleted(session, event_id, CrmEventKind.RECORD_DELETED, True, now)


def handle_record_restored(
    session: Session, event_id: int, now: datetime | None = None
) -> list[int]:
    """Undo a delete of the org's record ``{"record_id"}``."""
    return _set_deleted(session, event_id, CrmEventKind.RECORD_RESTORED, False, now)


def _set_deleted(
    session: Session, event_id: int, kind: CrmEventKind, deleted: bool, now: datetime | None
) -> list[int]:
    now = now or utcnow()
    event = _open(session, event_id, kind)
    if event is None:
        return []
    crm_id = _record_id(dict(_payload(event)))
    if crm_id is None:
        return _failed(
            session, event, CrmEventCode.INVALID_PAYLOAD, "record_id must be a CRM id", now
        )
    record = session.scalar(
        select(CrmRecord).where(CrmRecord.org_id == event.org_id, CrmRecord.crm_id == crm_id)
    )
    if record is None:
        crm_events.mark_failed(
            event, CrmEventCode.RECORD_MISSING, f"record {crm_id!r} does not exist", now
        )
    else:
        record.deleted = deleted
        crm_events.mark_processed(event, "deleted" if deleted else "restored", now)
    session.flush()
    return []


def handle_invitation_requested(
    session: Session, event_id: int, now: datetime | None = None
) -> list[int]:
    """Start a bulk invite from ``{"user_type_id", "inviter_id", "record_ids", "language"?}``.

    Returns the run's chunk ids (to enqueue to the bulk-invite actor after the commit); a
    request the pipeline refuses (unknown type or inviter, disabled type) fails the event
    with ``refused`` and writes no run.
    """
    now = now or utcnow()
    event = _open(session, event_id, CrmEventKind.INVITATION_REQUESTED)
    if event is None:
        return []
    payload = _payload(event)
    crm_ids = payload.get("record_ids", payload.get("crm_ids"))  # crm_ids: deprecated
    user_type_id = payload.get("user_type_id")
    inviter_id = payload.get("inviter_id")
    if (
        not isinstance(crm_ids, list)  # never None here: that would invite everyone
        or not isinstance(user_type_id, int)
        or not isinstance(inviter_id, int)
    ):
        detail = "needs integer user_type_id and inviter_id and a record_ids list"
        crm_events.mark_failed(event, CrmEventCode.INVALID_PAYLOAD, detail, now)
        session.flush()
        return []
    try:
        started = bulk.start_bulk_run(
            session,
            org_id=event.org_id,
            user_type_id=user_type_id,
            inviter_id=inviter_id,
            crm_ids=[str(crm_id) for crm_id in crm_ids],
            language=payload.get("language") or "en",
        )
    except PortalflowError as exc:
        crm_events.mark_failed(event, CrmEventCode.REFUSED, str(exc), now)
        session.flush()
        return []
    crm_events.mark_processed(event, f"bulk_run={started.run_id}", now)
    session.flush()
    return started.chunk_ids


def bulk_run_of(event: CrmEvent) -> int | None:
    """The bulk run an invitation.requested event started, read from its detail."""
    detail = event.detail or ""
    if detail.startswith("bulk_run="):
        return int(detail.removeprefix("bulk_run="))
    return None
