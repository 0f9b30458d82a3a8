"""Events the CRM sends us, recorded once per (org, the CRM's event id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portalflow.models import CrmEvent, CrmEventKind, CrmEventStatus, utcnow
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.tenancy.idempotency import IdempotencyConflict

MAX_KEY_LENGTH = 200


class EventIdReused(IdempotencyConflict):
    """The org already has an event with this id, of another type or payload."""

    code = "event_id_reused"


def record_event(
    session: Session,
    org_id: int,
    kind: CrmEventKind | str,
    idempotency_key: str,
    payload: dict[str, Any],
) -> tuple[CrmEvent, bool]:
    """Store one CRM event unless the org already has one with ``idempotency_key``.

    Returns ``(event, created)``; for a repeat delivery (same kind and payload) ``created``
    is False and the first event is returned unchanged. The same key with another kind or
    payload raises :class:`EventIdReused`: a CRM reusing an id must hear it was not applied.
    A concurrent insert of the same key is caught in a SAVEPOINT, so the caller's
    transaction survives. Flushes, never commits.
    """
    orgs.get_org(session, org_id)
    try:
        kind = CrmEventKind(kind)
    except ValueError:
        allowed = ", ".join(member.value for member in CrmEventKind)
        raise InvalidInput(f"event kind {kind!r} is not one of: {allowed}") from None
    key = (idempotency_key or "").strip()
    if not key:
        raise InvalidInput("an event needs an idempotency key (the CRM's event id)")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"event id {key[:20]!r}... is longer than {MAX_KEY_LENGTH}")
    if not isinstance(payload, dict):
        raise InvalidInput("an event payload must be a JSON object")
    existing = find_event(session, org_id, key)
    if existing is not None:
        return _same_event(existing, kind, payload), False
    event = CrmEvent(
        org_id=org_id,
        kind=kind,
        idempotency_key=key,
        payload=payload,
        status=CrmEventStatus.RECEIVED,
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        existing = find_event(session, org_id, key)
        if existing is None:  # not a duplicate key after all
            raise
        return _same_event(existing, kind, payload), False
    return event, True


def _same_event(existing: CrmEvent, kind: CrmEventKind, payload: dict[str, Any]) -> CrmEvent:
    if existing.kind != kind or existing.payload != payload:
        raise EventIdReused(
            f"event id {existing.idempotency_key!r} was already used with another type or "
            f"payload (first: {existing.kind.value}); send new content under a new id"
        )
    return existing


def find_event(session: Session, org_id: int, idempotency_key: str) -> CrmEvent | None:
    return session.scalar(
        select(CrmEvent).where(
            CrmEvent.org_id == org_id, CrmEvent.idempotency_key == idempotency_key
        )
    )


def get_event(session: Session, event_id: int, *, lock: bool = False) -> CrmEvent:
    """The event by id (locked for update when ``lock``), or NotFound."""
    event = session.get(CrmEvent, event_id, with_for_update=lock or None, populate_existing=lock)
    if event is None:
        raise NotFound(f"CRM event {event_id} does not exist")
    return event


def mark_processed(event: CrmEvent, detail: str | None = None, now: datetime | None = None) -> None:
    event.status = CrmEventStatus.PROCESSED
    event.result_code = None
    event.detail = detail
    event.processed_at = now or utcnow()


def mark_failed(event: CrmEvent, code: str, detail: str, now: datetime | None = None) -> None:
    """The event could not be applied; ``code`` is stable, ``detail`` says why in words."""
    event.status = CrmEventStatus.FAILED
    event.result_code = code
    event.detail = detail
    event.processed_at = now or utcnow()


def summary(event: CrmEvent) -> dict[str, Any]:
    """Plain values of an event, for the CLI and reports."""
    return {
        "id": event.id,
        "org_id": event.org_id,
        "kind": event.kind.value,
        "event_id": event.idempotency_key,
        "status": event.status.value,
        "result_code": event.result_code,
        "detail": event.detail,
        "received_at": event.received_at,
        "processed_at": event.processed_at,
    }
