"""Portal sessions: open, check, end; revoked set-based when a user's access changes.

    >>> opened = open_session(session, user, SignInMethod.PASSWORD, client_ip="203.0.113.9")
    >>> check_session(session, opened.token).portal_user_id == user.id
    True

Only the SHA-256 of a token is stored; the lookup goes through the unique index and the
comparison is constant-time. A session is live while it has not ended, has not expired and
its user is still confirmed (checked at every use, so a status written by any path locks
the user out even before revocation ran). The functions flush; callers commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    PortalSession,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    SessionEndReason,
    SignInMethod,
    SignInRefusal,
    utcnow,
)

SESSION_LIFETIME = timedelta(hours=12)
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200
USER_AGENT_LENGTH = 200
# A session's last use is written at most this often: a busy page must not write every hit.
LAST_SEEN_GRANULARITY = timedelta(minutes=5)


@dataclass(frozen=True)
class OpenedSession:
    """A new session: the plain token (shown once, never stored) and its row's values."""

    token: str
    session_id: int
    portal_user_id: int
    org_id: int
    expires_at: datetime


@dataclass(frozen=True)
class SessionCheck:
    """The answer to a token: who it signs in (refusal None), or why it does not."""

    refusal: SignInRefusal | None
    session_id: int | None = None
    portal_user_id: int | None = None
    org_id: int | None = None
    expires_at: datetime | None = None


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session,
    user: PortalUser,
    method: SignInMethod,
    *,
    client_ip: str | None = None,
    user_agent: str | None = None,
    lifetime: timedelta = SESSION_LIFETIME,
    now: datetime | None = None,
) -> OpenedSession:
    """A fresh session for ``user`` (flushed); the token is in the answer only."""
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = PortalSession(
        org_id=user.org_id,
        portal_user_id=user.id,
        token_hash=hash_session_token(token),
        method=method,
        client_ip=client_ip,
        user_agent=(user_agent or None) and user_agent[:USER_AGENT_LENGTH],
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    return OpenedSession(token, row.id, user.id, user.org_id, row.expires_at)


def check_session(session: Session, token: str | None, now: datetime | None = None) -> SessionCheck:
    """Who ``token`` signs in, or the refusal: no_session, session_expired, session_ended."""
    now = now or utcnow()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return SessionCheck(SignInRefusal.NO_SESSION)
    digest = hash_session_token(token)
    found = session.execute(
        select(PortalSession, PortalUser.status)
        .join(PortalUser, PortalUser.id == PortalSession.portal_user_id)
        .where(PortalSession.token_hash == digest)
        .execution_options(populate_existing=True)
    ).first()
    if found is None or not hmac.compare_digest(found[0].token_hash, digest):
        return SessionCheck(SignInRefusal.NO_SESSION)
    row, status = found
    if row.ended_at is not None or status != PortalUserStatus.CONFIRMED:
        return SessionCheck(SignInRefusal.SESSION_ENDED)
    if row.expires_at <= now:
        return SessionCheck(SignInRefusal.SESSION_EXPIRED)
    if row.last_seen_at is None or now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
        session.flush()
    return SessionCheck(None, row.id, row.portal_user_id, row.org_id, row.expires_at)


def end_session(
    session: Session,
    token: str,
    reason: SessionEndReason = SessionEndReason.LOGOUT,
    now: datetime | None = None,
) -> bool:
    """End the live session behind ``token`` (logout); False when there was none."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    ended = session.execute(
        update(PortalSession)
        .where(
            PortalSession.token_hash == hash_session_token(token),
            PortalSession.ended_at.is_(None),
        )
        .values(ended_at=now or utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(ended)


def end_for_users(
    session: Session,
    portal_user_ids: Sequence[int],
    reason: SessionEndReason,
    now: datetime | None = None,
) -> int:
    """End every live session of ``portal_user_ids``: one UPDATE; returns how many ended."""
    if not portal_user_ids:
        return 0
    ended = session.execute(
        update(PortalSession)
        .where(
            PortalSession.portal_user_id.in_(list(set(portal_user_ids))),
            PortalSession.ended_at.is_(None),
        )
        .values(ended_at=now or utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(ended or 0)


def end_by_ids(
    session: Session,
    org_id: int,
    session_ids: Sequence[int],
    reason: SessionEndReason = SessionEndReason.ENDED_BY_ADMIN,
    now: datetime | None = None,
) -> list[int]:
    """End the live sessions of ``session_ids`` in ``org_id``; the ids that were ended."""
    if not session_ids:
        return []
    return list(
        session.scalars(
            update(PortalSession)
            .where(
                PortalSession.org_id == org_id,
                PortalSession.id.in_(list(set(session_ids))),
                PortalSession.ended_at.is_(None),
            )
            .values(ended_at=now or utcnow(), end_reason=reason)
            .returning(PortalSession.id)
            .execution_options(synchronize_session=False)
        )
    )


def sessions_of(
    session: Session, org_id: int, portal_user_id: int, *, include_ended: bool = False
) -> list[PortalSession]:
    """The user's sessions, newest first: the live ones, or all of them."""
    query = select(PortalSession).where(
        PortalSession.org_id == org_id, PortalSession.portal_user_id == portal_user_id
    )
    if not include_ended:
        query = query.where(PortalSession.ended_at.is_(None))
    return list(session.scalars(query.order_by(PortalSession.id.desc())))


@dataclass(frozen=True)
class SignedInUser:
    """What a signed-in portal user may read about themself."""

    portal_user_id: int
    org_id: int
    user_type_id: int
    user_type: str
    status: PortalUserStatus
    email: str | None
    phone: str | None
    language: str | None
    time_zone: str | None


def signed_in_user(session: Session, portal_user_id: int) -> SignedInUser:
    """The portal user a live session signs in, as plain values."""
    user, type_name = session.execute(
        select(PortalUser, PortalUserType.name)
        .join(PortalUserType, PortalUserType.id == PortalUser.user_type_id)
        .where(PortalUser.id == portal_user_id)
    ).one()
    return SignedInUser(
        portal_user_id=user.id,
        org_id=user.org_id,
        user_type_id=user.user_type_id,
        user_type=type_name,
        status=user.status,
        email=user.email,
        phone=user.phone,
        language=user.language,
        time_zone=user.time_zone,
    )
