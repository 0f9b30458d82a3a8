"""Invitation tokens: 256-bit random, stored only as a SHA-256 hash, single use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import EmailKind, Invitation, InvitationStatus, TokenProblem, utcnow

TOKEN_BYTES = 32
BASE62 = string.digits + string.ascii_letters
INVITATION_LIFETIME = timedelta(days=7)
RESET_LIFETIME = timedelta(hours=1)
SIGN_IN_CODE_LIFETIME = timedelta(minutes=10)
SIGN_IN_CODE_DIGITS = 6
# How long a sent message's secret stays usable, by kind; the rest live 7 days.
LIFETIMES: dict[EmailKind, timedelta] = {
    EmailKind.RESET_PASSWORD: RESET_LIFETIME,
    EmailKind.SIGN_IN_CODE: SIGN_IN_CODE_LIFETIME,
}


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


def lifetime(kind: EmailKind) -> timedelta:
    """How long after its send a message of ``kind`` can be used."""
    return LIFETIMES.get(kind, INVITATION_LIFETIME)


def new_sign_in_code(invitation_id: int) -> tuple[str, str]:
    """A random 6-digit one-time code for a verification SMS, and the hash to store.

    The hash covers the row id too: codes this short repeat across rows, hashes must not.
    """
    code = "".join(secrets.choice(string.digits) for _ in range(SIGN_IN_CODE_DIGITS))
    return code, sign_in_code_hash(invitation_id, code)


def sign_in_code_hash(invitation_id: int, code: str) -> str:
    return hash_token(f"{invitation_id}:{code}")


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
