"""Invitation tokens: 256-bit random, stored only as a SHA-256 hash, single use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, TokenProblem, utcnow

TOKEN_BYTES = 32
BASE62 = string.digits + string.ascii_letters
INVITATION_LIFETIME = timedelta(days=7)


class InvalidToken(Exception):
    """A token that cannot be used, with the reason as a stable code."""

    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(f"invitation token is not valid: {problem.value}")
        self.problem = problem


def new_token() -> tuple[str, str]:
    """A fresh URL-safe token and the hash to store in its place."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def new_short_code(length: int) -> tuple[str, str]:
    """A random base-62 code of ``length`` characters (for SMS links), and its hash."""
    code = "".join(secrets.choice(BASE62) for _ in range(length))
    return code, hash_token(code)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def find_invitation(session: Session, token: str) -> Invitation | None:
    """The invitation behind ``token`` whatever its status, or None (a read, nothing more)."""
    digest = hash_token(token)
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == digest))
    # The index lookup finds the row; the constant-time compare is the actual check.
    if invitation is None or not hmac.compare_digest(invitation.token_hash or "", digest):
        return None
    return invitation


def find_valid_invitation(session: Session, token: str, now: datetime | None = None) -> Invitation:
    """The sent, unexpired, unsuperseded invitation behind ``token``, or InvalidToken.

    Expiry is checked here, at use, not only by the sweep.
    """
    invitation = find_invitation(session, token)
    if invitation is None:
        raise InvalidToken(TokenProblem.UNKNOWN)
    problem = {
        InvitationStatus.SUPERSEDED: TokenProblem.SUPERSEDED,
        InvitationStatus.ACCEPTED: TokenProblem.USED,
        InvitationStatus.EXPIRED: TokenProblem.EXPIRED,
        InvitationStatus.FAILED: TokenProblem.NOT_SENT,
    }.get(invitation.status)
    if problem is not None:
        raise InvalidToken(problem)
    if invitation.expires_at is not None and invitation.expires_at <= (now or utcnow()):
        raise InvalidToken(TokenProblem.EXPIRED)
    return invitation
