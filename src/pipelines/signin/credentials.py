"""Signing in: a password, or a one-time code sent by the verification SMS.

- Email-preference user types sign in with the email address and the password set on
  acceptance. Phone-preference types sign in with the number (E.164; after a number change
  only the new one works) and either a one-time code (:func:`request_sign_in_code`, then
  :func:`sign_in_with_code`) or that password.
- Nothing tells whether an account exists: an unknown login costs the same Argon2id check
  against a dummy hash as a wrong password, codes are requested with one answer for every
  number, and lockout counts the login typed, not the user found. A status refusal
  (unconfirmed, login suspended, deactivated, removed) is answered only once the password
  or code was right: only the account's holder learns the account's status.
- Codes go only to confirmed users (nobody else could sign in, so no credits are spent on
  them); a code works once, for 10 minutes, and only the newest one.

Each function takes the :class:`~.guard.SignInGuard` and the client address, flushes and
returns a value; the caller commits, then enqueues ``message_ids``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    SIGN_IN_REFUSAL_DESCRIPTIONS,
    Channel,
    EmailKind,
    Invitation,
    InvitationPreference,
    InvitationStatus,
    Org,
    Portal,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    SignInMethod,
    SignInRefusal,
    utcnow,
)
from portalflow.pipelines.invitations import tokens
from portalflow.pipelines.invitations.invitation_states import Transition, move
from portalflow.pipelines.invitations.password_hashes import (
    check_user_password,
    hash_password,
    verify_password,
)
from portalflow.pipelines.users import phones

from ..errors import InvalidInput, NotFound
from . import sessions
from .guard import SignInGuard, account_key
from .messages import queue_message

S = PortalUserStatus
STATUS_REFUSALS: dict[PortalUserStatus, SignInRefusal] = {
    S.INVITED: SignInRefusal.UNCONFIRMED,
    S.LOGIN_SUSPENDED: SignInRefusal.LOGIN_SUSPENDED,
    S.DEACTIVATED: SignInRefusal.DEACTIVATED,
    S.REMOVED: SignInRefusal.REMOVED,
}
MAX_SECRET_LENGTH = 1024  # longer than any password the policy allows (128)


@dataclass(frozen=True)
class SignInAnswer:
    """A sign-in's outcome: the new session, or the refusal (and how long to wait)."""

    refusal: SignInRefusal | None
    opened: sessions.OpenedSession | None = None
    retry_after: int | None = None

    @property
    def detail(self) -> str:
        return SIGN_IN_REFUSAL_DESCRIPTIONS[self.refusal] if self.refusal else "signed in"


@dataclass(frozen=True)
class MessageRequest:
    """A code or reset request's outcome: refused (rate limits only), or the rows to send.

    ``message_ids`` is empty both when no account matched and when one did not get a
    message: the requester is told the same either way.
    """

    refusal: SignInRefusal | None
    message_ids: list[int] = field(default_factory=list)
    retry_after: int | None = None

    @property
    def detail(self) -> str:
        if self.refusal:
            return SIGN_IN_REFUSAL_DESCRIPTIONS[self.refusal]
        return "if an account matches, a message is on its way"


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """An Argon2id hash of nothing anyone knows: checked when there is no user to check."""
    return hash_password(tokens.new_token()[0])


@dataclass(frozen=True)
class PortalView:
    """What the sign-in pages show of a portal."""

    org_id: int
    org_name: str
    portal_name: str


def portal_view(session: Session, portal_slug: str) -> PortalView | None:
    """The portal ``portal_slug`` and its org's name, or None when there is none."""
    row = session.execute(
        select(Portal.org_id, Org.name, Portal.name)
        .join(Org, Org.id == Portal.org_id)
        .where(Portal.slug == portal_slug.strip())
    ).first()
    return PortalView(*row) if row is not None else None


def portal_org(session: Session, portal_slug: str) -> int:
    """The org of the portal ``portal_slug``, or NotFound."""
    org_id = session.scalar(select(Portal.org_id).where(Portal.slug == portal_slug.strip()))
    if org_id is None:
        raise NotFound(f"there is no portal {portal_slug!r}")
    return org_id


def normalise_login(login: str) -> tuple[InvitationPreference, str]:
    """(preference, login): an email as typed, or a number in E.164; InvalidInput otherwise."""
    text = login.strip()
    if "@" in text:
        return InvitationPreference.EMAIL, text
    verdict = phones.indian_mobile(text)
    if verdict.e164 is None:
        raise InvalidInput(
            f"{text!r} is neither an email address nor an Indian mobile number"
            f" ({verdict.detail or 'not a number'})"
        )
    return InvitationPreference.PHONE, verdict.e164


def find_user(
    session: Session,
    org_id: int,
    preference: InvitationPreference,
    login: str,
    *,
    confirmed_only: bool = False,
) -> PortalUser | None:
    """The user of ``org_id`` who signs in with ``login``: a confirmed one first, then oldest."""
    column = PortalUser.email if preference == InvitationPreference.EMAIL else PortalUser.phone
    matches = (
        func.lower(column) == login.lower()
        if preference == InvitationPreference.EMAIL
        else column == login
    )
    query = (
        select(PortalUser)
        .join(PortalUserType, PortalUserType.id == PortalUser.user_type_id)
        .where(
            PortalUser.org_id == org_id,
            matches,
            PortalUserType.invitation_preference == preference,
        )
        .order_by(case((PortalUser.status == S.CONFIRMED, 0), else_=1), PortalUser.id)
        .limit(1)
    )
    if confirmed_only:
        query = query.where(PortalUser.status == S.CONFIRMED)
    return session.scalar(query)


def sign_in_with_password(
    session: Session,
    guard: SignInGuard,
    *,
    portal_slug: str,
    login: str,
    password: str,
    client_ip: str,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> SignInAnswer:
    """Sign in with an email (or, for phone types, a number) and the password."""
    now = now or utcnow()
    if (wait := guard.admit_client(client_ip)) is not None:
        return SignInAnswer(SignInRefusal.RATE_LIMITED, retry_after=wait)
    org_id = portal_org(session, portal_slug)
    preference, normalised = normalise_login(login)
    account = account_key(portal_slug, normalised)
    if (wait := guard.locked_out(account)) is not None:
        return SignInAnswer(SignInRefusal.LOCKED_OUT, retry_after=wait)
    user = find_user(session, org_id, preference, normalised)
    password = password[:MAX_SECRET_LENGTH]
    if user is None or not user.password_hash:
        verify_password(password, dummy_hash())  # the same cost as a real check
        right = False
    else:
        right = check_user_password(session, user, password)
    return _finish(
        session,
        guard,
        account,
        user if right else None,
        SignInMethod.PASSWORD,
        client_ip,
        user_agent,
        now,
    )


@dataclass(frozen=True)
class MessageAdmission:
    """A code or reset request past the rate limits (refusal None), with its login resolved.

    The first half of a request, answered at once; the second half (who gets a message) may
    run after the answer was sent, so the answer's timing tells nothing about the account.
    """

    refusal: SignInRefusal | None
    org_id: int = 0
    preference: InvitationPreference = InvitationPreference.EMAIL
    login: str = ""
    retry_after: int | None = None

    def refused(self) -> MessageRequest | None:
        """The request's answer when it was refused, else None."""
        if self.refusal is None:
            return None
        return MessageRequest(self.refusal, retry_after=self.retry_after)


def admit_message_request(
    session: Session,
    guard: SignInGuard,
    *,
    portal_slug: str,
    login: str,
    client_ip: str,
    phone_only: bool = False,
) -> MessageAdmission:
    """Count a code or reset request against the client's and the account's limits.

    NotFound for an unknown portal, InvalidInput for a login that is neither an email nor
    an Indian mobile number (or not a number when ``phone_only``).
    """
    if (wait := guard.admit_client(client_ip)) is not None:
        return MessageAdmission(SignInRefusal.RATE_LIMITED, retry_after=wait)
    org_id = portal_org(session, portal_slug)
    if phone_only:
        preference, normalised = InvitationPreference.PHONE, _phone(login)
    else:
        preference, normalised = normalise_login(login)
    if (wait := guard.admit_message(account_key(portal_slug, normalised))) is not None:
        return MessageAdmission(SignInRefusal.RATE_LIMITED, retry_after=wait)
    return MessageAdmission(None, org_id, preference, normalised)


def send_sign_in_code(
    session: Session, admission: MessageAdmission, now: datetime | None = None
) -> MessageRequest:
    """Queue a verification SMS with a fresh code for the confirmed user of the number."""
    if (refused := admission.refused()) is not None:
        return refused
    user = find_user(
        session, admission.org_id, InvitationPreference.PHONE, admission.login, confirmed_only=True
    )
    if user is None:
        return MessageRequest(None)
    message_id = queue_message(session, user, EmailKind.SIGN_IN_CODE, Channel.SMS, now or utcnow())
    return MessageRequest(None, [message_id] if message_id is not None else [])


def request_sign_in_code(
    session: Session,
    guard: SignInGuard,
    *,
    portal_slug: str,
    phone: str,
    client_ip: str,
    now: datetime | None = None,
) -> MessageRequest:
    """Send a one-time code by the verification SMS to the confirmed user of ``phone``."""
    admission = admit_message_request(
        session, guard, portal_slug=portal_slug, login=phone, client_ip=client_ip, phone_only=True
    )
    return send_sign_in_code(session, admission, now)


def sign_in_with_code(
    session: Session,
    guard: SignInGuard,
    *,
    portal_slug: str,
    phone: str,
    code: str,
    client_ip: str,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> SignInAnswer:
    """Sign in with the number and the newest code sent to it; the code is used up."""
    now = now or utcnow()
    if (wait := guard.admit_client(client_ip)) is not None:
        return SignInAnswer(SignInRefusal.RATE_LIMITED, retry_after=wait)
    org_id = portal_org(session, portal_slug)
    number = _phone(phone)
    account = account_key(portal_slug, number)
    if (wait := guard.locked_out(account)) is not None:
        return SignInAnswer(SignInRefusal.LOCKED_OUT, retry_after=wait)
    user = find_user(session, org_id, InvitationPreference.PHONE, number)
    # The same lookup with or without a user: the answer's timing tells nothing either.
    row = _live_code(session, user.id if user is not None else 0, now)
    given = tokens.sign_in_code_hash(row.id if row else 0, code.strip()[:MAX_SECRET_LENGTH])
    right = row is not None and hmac.compare_digest(row.token_hash or "", given)
    if right and row is not None:
        used = session.execute(
            move(
                Transition.ACCEPT,
                Invitation.id == row.id,
                Invitation.expires_at > now,
                values={"updated_at": now},
            )
        ).rowcount  # type: ignore[attr-defined]
        right = used == 1  # a concurrent sign-in used it first
    return _finish(
        session,
        guard,
        account,
        user if right else None,
        SignInMethod.SMS_CODE,
        client_ip,
        user_agent,
        now,
    )


def _finish(
    session: Session,
    guard: SignInGuard,
    account: str,
    user: PortalUser | None,
    method: SignInMethod,
    client_ip: str,
    user_agent: str | None,
    now: datetime,
) -> SignInAnswer:
    """``user`` is None when the secret was wrong (or nobody has that login)."""
    if user is None:
        guard.record_failure(account)
        return SignInAnswer(SignInRefusal.INVALID_CREDENTIALS)
    if user.status != S.CONFIRMED:
        return SignInAnswer(STATUS_REFUSALS[user.status])
    guard.record_success(account)
    opened = sessions.open_session(
        session, user, method, client_ip=client_ip, user_agent=user_agent, now=now
    )
    return SignInAnswer(None, opened)


def _phone(raw: str) -> str:
    verdict = phones.indian_mobile(raw)
    if verdict.e164 is None:
        raise InvalidInput(verdict.detail or f"{raw!r} is not an Indian mobile number")
    return verdict.e164


def _live_code(session: Session, portal_user_id: int, now: datetime) -> Invitation | None:
    """The user's newest sent, unexpired sign-in code row (older ones were superseded)."""
    return session.scalar(
        select(Invitation)
        .where(
            Invitation.portal_user_id == portal_user_id,
            Invitation.kind == EmailKind.SIGN_IN_CODE,
            Invitation.status == InvitationStatus.SENT,
            Invitation.expires_at > now,
        )
        .order_by(Invitation.id.desc())
        .limit(1)
    )
