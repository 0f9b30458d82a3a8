"""Raw provider events (SES via SNS, Twilio status callbacks), stored once per dedupe key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portalflow.models.delivery import ProviderEvent
from portalflow.models.enums import ProviderEventStatus


def record_provider_event(
    session: Session,
    *,
    provider: str,
    dedupe_key: str,
    payload: dict[str, Any],
    status: ProviderEventStatus = ProviderEventStatus.RECEIVED,
    detail: str | None = None,
) -> tuple[int, bool]:
    """Store one provider event unless its ``dedupe_key`` is already known.

    Returns ``(event_id, created)``; ``created`` is False for a repeat delivery, whose
    existing row's id is returned. A concurrent insert of the same key is caught in a
    SAVEPOINT, so the caller's transaction survives. Flushes, never commits.
    """
    existing = _event_id(session, dedupe_key)
    if existing is not None:
        return existing, False
    event = ProviderEvent(
        provider=provider, dedupe_key=dedupe_key, payload=payload, status=status, detail=detail
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        existing = _event_id(session, dedupe_key)
        if existing is None:  # not a duplicate key after all
            raise
        return existing, False
    return event.id, True


def _event_id(session: Session, dedupe_key: str) -> int | None:
    return session.scalar(select(ProviderEvent.id).where(ProviderEvent.dedupe_key == dedupe_key))
