"""Accepting an invitation and confirming a changed email address, by token.

A token is used once, only before its expiry (checked here, at use), and only while its
invitation is the live one (``sent``: not superseded, used or expired). Every refusal is an
:class:`AcceptanceError` with a stable ``problem`` code and changes nothing.

    >>> user = accept_invitation(session, token, password="correct horse battery")
    >>> user.status.value
    'confirmed'

Passwords are stored only as a salted scrypt hash in a self-describing string
(``scrypt$n$r$p$salt$hash``), checked with :func:`verify_password`. The functions flush;
callers commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import available_timezones

from sqlalchemy.orm import Session

from portalflow.models import (
    CrmUser,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    utcnow,
)

from . import lifecycle, tokens
from .errors import InvalidInput, PortalflowError
from .invitation_states import Transition, move

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# scrypt cost: 2**14 x 8 x 1 uses 16 MiB and takes tens of milliseconds.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
SCRYPT_KEY_BYTES = 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,4})?$")
DEFAULT_LANGUAGE = "en"
DEFAULT_TIME_ZONE = "UTC"


class AcceptanceProblem(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    NOT_SENT = "not_sent"
    WRONG_KIND = "wrong_kind"


MESSAGES: dict[AcceptanceProblem, str] = {
    AcceptanceProblem.UNKNOWN: "this link is not valid: no invitation has this token",
    AcceptanceProblem.USED: "this link was already used; sign in to the portal instead",
    AcceptanceProblem.EXPIRED: (
        "this link has expired (invitations are valid for 7 days); ask for a new invitation"
    ),
    AcceptanceProblem.SUPERSEDED: (
        "a newer invitation replaced this one; use the link in the most recent email"
    ),
    AcceptanceProblem.NOT_SENT: "this invitation was never delivered, so it cannot be used",
    AcceptanceProblem.WRONG_KIND: "this link is not for this step",
}


class AcceptanceError(PortalflowError):
    """A token that cannot be used, with the reason as a stable code; nothing was changed."""

    def __init__(self, problem: AcceptanceProblem | str, detail: str | None = None) -> None:
        self.problem = AcceptanceProblem(problem)
        super().__init__(detail or MESSAGES[self.problem])


_FROM_TOKEN_PROBLEM = {
    tokens.TokenProblem.UNKNOWN: AcceptanceProblem.UNKNOWN,
    tokens.TokenProblem.USED: AcceptanceProblem.USED,
    tokens.TokenProblem.EXPIRED: AcceptanceProblem.EXPIRED,
    tokens.TokenProblem.SUPERSEDED: AcceptanceProblem.SUPERSEDED,
    tokens.TokenProblem.NOT_SENT: AcceptanceProblem.NOT_SENT,
}

_WRONG_KIND_DETAIL = {
    EmailKind.ACCEPT_INVITATION: (
        "this link accepts an invitation; it cannot confirm an email address"
    ),
    EmailKind.CONFIRM_EMAIL: (
        "this link confirms an email address; it cannot accept an invitation"
    ),
}


# -- passwords ------------------------------------------------------------------------------


def check_password(password: str) -> None:
    """InvalidInput unless ``password`` is acceptable (at least 8 characters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    if not password.strip():
        raise InvalidInput("the password must not be only spaces")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_SCRYPT_MAXMEM
    )


def hash_password(password: str) -> str:
    """A salted scrypt hash: ``scrypt$16384$8$1$<salt>$<hash>`` (URL-safe base64)."""
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a hash from :func:`hash_password` (constant-time compare)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


# -- locale ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_locale(language: str | None, time_zone: str | None) -> None:
    """InvalidInput for a malformed language tag or an unknown IANA time zone."""
    if language is not None and not LANGUAGE_PATTERN.match(language):
        raise InvalidInput(f"language {language!r} is not a language code such as 'en' or 'pt-BR'")
    zones = _time_zones()
    # Without a time zone database on the machine nothing can be checked but UTC.
    if time_zone is not None and time_zone != "UTC" and zones and time_zone not in zones:
        raise InvalidInput(f"time zone {time_zone!r} is not an IANA time zone such as 'UTC'")


# -- the token ------------------------------------------------------------------------------


def _usable_invitation(session: Session, token: str, kind: EmailKind, now: datetime) -> Invitation:
    """The live invitation of ``kind`` behind ``token``, or AcceptanceError."""
    try:
        invitation = tokens.find_valid_invitation(session, token, now=now)
    except tokens.InvalidToken as exc:
        raise AcceptanceError(_FROM_TOKEN_PROBLEM[exc.problem]) from None
    if invitation.status != InvitationStatus.SENT:
        # Queued or sending: the link exists but the send was never recorded as done.
        raise AcceptanceError(AcceptanceProblem.NOT_SENT)
    if invitation.kind != kind:
        raise AcceptanceError(AcceptanceProblem.WRONG_KIND, _WRONG_KIND_DETAIL[invitation.kind])
    if invitation.portal_user_id is None:
        raise AcceptanceError(AcceptanceProblem.UNKNOWN, "this invitation has no portal user")
    return invitation


def _use(
    session: Session, invitation: Invitation, action: lifecycle.Action, now: datetime
) -> PortalUser:
    """Lock the user, check the transition, then mark the invitation accepted exactly once.

    The user is locked before the invitation (the order reinvite uses), and the invitation
    moves only from ``sent``: of two concurrent uses one wins, the other gets its problem.
    """
    user = session.get(
        PortalUser, invitation.portal_user_id, with_for_update=True, populate_existing=True
    )
    if user is None:
        raise AcceptanceError(AcceptanceProblem.UNKNOWN, "this invitation has no portal user")
    lifecycle.next_status(user.status, action, user.id)  # refused before anything is written
    claimed = session.execute(
        move(
            Transition.ACCEPT,
            Invitation.id == invitation.id,
            Invitation.expires_at.is_(None) | (Invitation.expires_at > now),
            values={"updated_at": now},
        )
    ).rowcount
    session.refresh(invitation)
    if claimed != 1:
        # Someone else used, superseded or expired it between the read and the lock.
        raise AcceptanceError(_problem_of(invitation, now))
    lifecycle.transition(session, user, action, now)
    return user


def _problem_of(invitation: Invitation, now: datetime) -> AcceptanceProblem:
    return {
        InvitationStatus.ACCEPTED: AcceptanceProblem.USED,
        InvitationStatus.SUPERSEDED: AcceptanceProblem.SUPERSEDED,
        InvitationStatus.EXPIRED: AcceptanceProblem.EXPIRED,
        InvitationStatus.SENT: AcceptanceProblem.EXPIRED,  # sent, so it failed on expires_at
    }.get(invitation.status, AcceptanceProblem.NOT_SENT)


# -- the two steps --------------------------------------------------------------------------


def accept_invitation(
    session: Session,
    token: str,
    *,
    password: str,
    language: str | None = None,
    time_zone: str | None = None,
    now: datetime | None = None,
) -> PortalUser:
    """Accept the invitation behind ``token``: the user is confirmed with a password.

    Language and time zone default to the inviting CRM user's. Raises AcceptanceError for
    a token that cannot be used, InvalidInput for a bad password or locale, and
    InvalidTransition when the user cannot accept (removed in the meantime, say).
    """
    now = now or utcnow()
    invitation = _usable_invitation(session, token, EmailKind.ACCEPT_INVITATION, now)
    check_password(password)
    check_locale(language, time_zone)
    inviter = session.get(CrmUser, invitation.invited_by_id) if invitation.invited_by_id else None
    password_hash = hash_password(password)  # slow on purpose: before any lock is taken
    user = _use(session, invitation, lifecycle.Action.ACCEPT, now)
    user.password_hash = password_hash
    user.language = language or (inviter.language if inviter else None) or DEFAULT_LANGUAGE
    user.time_zone = time_zone or (inviter.time_zone if inviter else None) or DEFAULT_TIME_ZONE
    user.confirmed_at = now
    user.updated_at = now
    session.flush()
    return user


def confirm_email(session: Session, token: str, now: datetime | None = None) -> PortalUser:
    """Confirm a changed email address: a login-suspended user is confirmed again.

    Access comes back with the password the user already has; it is not touched.
    """
    now = now or utcnow()
    invitation = _usable_invitation(session, token, EmailKind.CONFIRM_EMAIL, now)
    user = _use(session, invitation, lifecycle.Action.CONFIRM_EMAIL, now)
    user.confirmed_at = now
    user.updated_at = now
    session.flush()
    return user


__all__ = [
    "AcceptanceError",
    "AcceptanceProblem",
    "accept_invitation",
    "confirm_email",
    "hash_password",
    "verify_password",
]
