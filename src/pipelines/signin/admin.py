"""What an admin sees of a portal user's sessions, and ending them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import PortalSession, PortalUser, SessionEndReason, SessionState, utcnow

from ..errors import NotFound
from . import sessions


def list_sessions(
    session: Session,
    org_id: int,
    portal_user_id: int,
    *,
    include_ended: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The user's sessions, newest first, as plain values (never a token or its hash)."""
    _check_user(session, org_id, portal_user_id)
    now = now or utcnow()
    rows = sessions.sessions_of(session, org_id, portal_user_id, include_ended=include_ended)
    return [_summary(row, now) for row in rows]


def end_sessions(
    session: Session,
    org_id: int,
    portal_user_id: int,
    session_ids: Sequence[int] = (),
    now: datetime | None = None,
) -> list[int]:
    """End the user's live sessions (only ``session_ids`` when given); the ids ended.

    NotFound when the user, or one of ``session_ids``, is not the org's user's session.
    """
    _check_user(session, org_id, portal_user_id)
    if session_ids:
        theirs = set(
            session.scalars(
                select(PortalSession.id).where(
                    PortalSession.portal_user_id == portal_user_id,
                    PortalSession.id.in_(list(session_ids)),
                )
            )
        )
        missing = sorted(set(session_ids) - theirs)
        if missing:
            raise NotFound(f"session {missing[0]} is not a session of portal user {portal_user_id}")
        wanted = list(session_ids)
    else:
        wanted = [row.id for row in sessions.sessions_of(session, org_id, portal_user_id)]
    return sorted(
        sessions.end_by_ids(session, org_id, wanted, SessionEndReason.ENDED_BY_ADMIN, now)
    )


def _check_user(session: Session, org_id: int, portal_user_id: int) -> None:
    user = session.get(PortalUser, portal_user_id)
    if user is None or user.org_id != org_id:
        raise NotFound(f"portal user {portal_user_id} does not exist in org {org_id}")


def _summary(row: PortalSession, now: datetime) -> dict[str, Any]:
    if row.ended_at is not None:
        state = SessionState.ENDED
    else:
        state = SessionState.EXPIRED if row.expires_at <= now else SessionState.LIVE
    return {
        "id": row.id,
        "portal_user_id": row.portal_user_id,
        "state": state.value,
        "method": row.method.value,
        "client_ip": row.client_ip,
        "user_agent": row.user_agent,
        "created_at": row.created_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat() if row.last_seen_at else None,
        "expires_at": row.expires_at.isoformat(),
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "end_reason": row.end_reason.value if row.end_reason else None,
    }
