"""Forgotten passwords: a reset link by email or SMS, and the reset itself.

The message follows the user type's invitation preference: an email of kind
``reset_password`` (per language, the user type's template or the shipped default), or
the org's forgot-password SMS template (DLT-checked like every SMS). Only a confirmed user
is sent one; every request gets the same answer. A reset token is 256-bit for email, a
short-link code for SMS; only its SHA-256 is stored; it works once, for one hour from the
send, and only the newest one. The new password follows the acceptance rule
(:mod:`..password_policy`); after a reset every session of the user ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from portalflow.models import (
    SIGN_IN_REFUSAL_DESCRIPTIONS,
    Channel,
    EmailKind,
    Invitation,
    InvitationPreference,
    PortalUser,
    PortalUserStatus,
    SessionEndReason,
    SignInRefusal,
    utcnow,
)
from portalflow.pipelines.invitations.acceptance import (
    AcceptanceError,
    guessable_words,
    usable_invitation,
)
from portalflow.pipelines.invitations.invitation_states import Transition, move
from portalflow.pipelines.invitations.password_hashes import hash_password
from portalflow.pipelines.invitations.password_policy import check_password

from . import sessions
from .credentials import (
    STATUS_REFUSALS,
    MessageAdmission,
    MessageRequest,
    admit_message_request,
    find_user,
)
from .guard import SignInGuard
from .messages import queue_message


@dataclass(frozen=True)
class ResetAnswer:
    """A reset's outcome: the user and the sessions ended, or the refusal.

    ``problem`` says why a token was refused (unknown, used, expired, superseded...).
    """

    refusal: SignInRefusal | None
    portal_user_id: int | None = None
    sessions_ended: int = 0
    problem: str | None = None
    retry_after: int | None = None

    @property
    def detail(self) -> str:
        if self.refusal is None:
            return "the password was changed; every session was signed out"
        return SIGN_IN_REFUSAL_DESCRIPTIONS[self.refusal]


def send_reset(
    session: Session, admission: MessageAdmission, now: datetime | None = None
) -> MessageRequest:
    """Queue a reset message for the confirmed user of the admitted login, by its channel."""
    if (refused := admission.refused()) is not None:
        return refused
    user = find_user(
        session, admission.org_id, admission.preference, admission.login, confirmed_only=True
    )
    if user is None:
        return MessageRequest(None)
    by_sms = admission.preference == InvitationPreference.PHONE
    channel = Channel.SMS if by_sms else Channel.EMAIL
    message_id = queue_message(session, user, EmailKind.RESET_PASSWORD, channel, now or utcnow())
    return MessageRequest(None, [message_id] if message_id is not None else [])


def request_reset(
    session: Session,
    guard: SignInGuard,
    *,
    portal_slug: str,
    login: str,
    client_ip: str,
    now: datetime | None = None,
) -> MessageRequest:
    """Send a reset link to the confirmed user of ``login`` (an email, or a number)."""
    admission = admit_message_request(
        session, guard, portal_slug=portal_slug, login=login, client_ip=client_ip
    )
    return send_reset(session, admission, now)


def reset_password(
    session: Session,
    guard: SignInGuard,
    *,
    token: str,
    password: str,
    client_ip: str,
    now: datetime | None = None,
) -> ResetAnswer:
    """Set a new password with the reset token; the token is used up, every session ends.

    Raises PasswordRejected (an InvalidInput) for a password the policy refuses; nothing
    is changed then and the token still works.
    """
    now = now or utcnow()
    if (wait := guard.admit_client(client_ip)) is not None:
        return ResetAnswer(SignInRefusal.RATE_LIMITED, retry_after=wait)
    try:
        invitation = usable_invitation(session, token, EmailKind.RESET_PASSWORD, now)
    except AcceptanceError as exc:
        return ResetAnswer(SignInRefusal.INVALID_RESET_TOKEN, problem=exc.problem.value)
    check_password(password, guessable_words(session, invitation))
    password_hash = hash_password(password)  # slow on purpose: before any lock is taken
    user = session.get(
        PortalUser, invitation.portal_user_id, with_for_update=True, populate_existing=True
    )
    assert user is not None  # usable_invitation refuses a row without one
    if user.status != PortalUserStatus.CONFIRMED:
        return ResetAnswer(STATUS_REFUSALS[user.status], portal_user_id=user.id)
    used = session.execute(
        move(
            Transition.ACCEPT,
            Invitation.id == invitation.id,
            Invitation.expires_at > now,
            values={"updated_at": now},
        )
    ).rowcount  # type: ignore[attr-defined]
    if used != 1:  # a concurrent reset used it first, or it expired meanwhile
        return ResetAnswer(SignInRefusal.INVALID_RESET_TOKEN, problem="used")
    user.password_hash = password_hash
    user.updated_at = now
    ended = sessions.end_for_users(session, [user.id], SessionEndReason.PASSWORD_RESET, now)
    session.flush()
    return ResetAnswer(None, portal_user_id=user.id, sessions_ended=ended)
