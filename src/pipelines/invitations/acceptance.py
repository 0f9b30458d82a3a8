"""Accepting an invitation and confirming a changed email address, by token.

A token is used once, only before its expiry (checked here, at use), and only while its
invitation is the live one (``sent``: not superseded, used or expired). Every refusal is an
:class:`AcceptanceError` with a stable ``problem`` code and changes nothing.

    >>> user = accept_invitation(session, token, password="correct horse battery")
    >>> user.status.value
    'confirmed'

The password rule is :mod:`.password_policy` (12 to 128 characters, zxcvbn score >= 3).
The locale is checked here: a language tag, an IANA time zone, ``12h`` or ``24h``, and an
ISO 3166-1 alpha-2 country (pycountry's table); each defaults to the inviting CRM user's
(the country to the org's when the CRM user has none).

Passwords are stored only as an Argon2id hash (:mod:`.password_hashes`). The functions
flush; callers commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import available_timezones

import pycountry
from sqlalchemy.orm import Session

from portalflow.models import (
    AcceptanceProblem,
    CrmRecord,
    CrmUser,
    EmailKind,
    Invitation,
    InvitationStatus,
    Org,
    PortalUser,
    TokenProblem,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.errors import InvalidInput, PortalflowError
from portalflow.pipelines.users import lifecycle

from . import tokens
from .invitation_states import Transition, move
from .password_hashes import hash_password
from .password_policy import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_password

LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,4})?$")
DEFAULT_LANGUAGE = "en"
DEFAULT_TIME_ZONE = "UTC"
TIME_FORMATS = ("12h", "24h")
DEFAULT_TIME_FORMAT = "12h"


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
    TokenProblem.UNKNOWN: AcceptanceProblem.UNKNOWN,
    TokenProblem.USED: AcceptanceProblem.USED,
    TokenProblem.EXPIRED: AcceptanceProblem.EXPIRED,
    TokenProblem.SUPERSEDED: AcceptanceProblem.SUPERSEDED,
    TokenProblem.NOT_SENT: AcceptanceProblem.NOT_SENT,
}

_WRONG_KIND_DETAIL = {
    EmailKind.ACCEPT_INVITATION: (
        "this link accepts an invitation; it cannot confirm an email address"
    ),
    EmailKind.CONFIRM_EMAIL: (
        "this link confirms an email address; it cannot accept an invitation"
    ),
    EmailKind.RESET_PASSWORD: "this link resets a password; it cannot be used for this step",
    EmailKind.SIGN_IN_CODE: "this is a sign-in code; it cannot be used for this step",
}


# -- locale ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zones() -> list[str]:
    """Every IANA time zone name this machine knows, sorted (at least ``UTC``)."""
    return sorted(_time_zones() | {"UTC"})


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, str], ...]:
    """ISO 3166-1 countries as (alpha-2 code, English name), sorted by name."""
    pairs = ((country.alpha_2, country.name) for country in pycountry.countries)
    return tuple(sorted(pairs, key=lambda pair: pair[1]))


def _country_codes() -> frozenset[str]:
    return frozenset(code for code, _name in countries())


def check_locale(
    language: str | None,
    time_zone: str | None,
    time_format: str | None = None,
    country: str | None = None,
) -> None:
    """InvalidInput for a malformed language tag, an unknown IANA time zone, a time format
    other than 12h/24h, or a country that is not an ISO 3166-1 alpha-2 code."""
    if language is not None and not LANGUAGE_PATTERN.match(language):
        raise InvalidInput(f"language {language!r} is not a language code such as 'en' or 'pt-BR'")
    zones = _time_zones()
    # Without a time zone database on the machine nothing can be checked but UTC.
    if time_zone is not None and time_zone != "UTC" and zones and time_zone not in zones:
        raise InvalidInput(f"time zone {time_zone!r} is not an IANA time zone such as 'UTC'")
    if time_format is not None and time_format not in TIME_FORMATS:
        raise InvalidInput(f"time format {time_format!r} is not one of {', '.join(TIME_FORMATS)}")
    if country is not None and country not in _country_codes():
        raise InvalidInput(f"country {country!r} is not an ISO 3166-1 alpha-2 code such as 'IN'")


# -- the token ------------------------------------------------------------------------------


def usable_invitation(session: Session, token: str, kind: EmailKind, now: datetime) -> Invitation:
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
    outbox.invitation_events(
        session,
        WebhookEventType.INVITATION_ACCEPTED,
        [invitation.id],
        org_id=invitation.org_id,
        now=now,
    )
    lifecycle.transition(session, user, action, now)
    return user


def _problem_of(invitation: Invitation, now: datetime) -> AcceptanceProblem:
    return {
        InvitationStatus.ACCEPTED: AcceptanceProblem.USED,
        InvitationStatus.SUPERSEDED: AcceptanceProblem.SUPERSEDED,
        InvitationStatus.EXPIRED: AcceptanceProblem.EXPIRED,
        InvitationStatus.SENT: AcceptanceProblem.EXPIRED,  # sent, so it failed on expires_at
    }.get(invitation.status, AcceptanceProblem.NOT_SENT)


# -- what the inviter and the record tell ---------------------------------------------------


@dataclass(frozen=True)
class LocaleDefaults:
    """The locale an accepting user starts from: the inviting CRM user's."""

    language: str
    time_zone: str
    time_format: str
    country: str | None


def locale_defaults(session: Session, invitation: Invitation) -> LocaleDefaults:
    """The inviting CRM user's locale; the country falls back to the org's."""
    inviter = session.get(CrmUser, invitation.invited_by_id) if invitation.invited_by_id else None
    org = session.get(Org, invitation.org_id)
    country = (inviter.country if inviter else None) or (org.country if org else None)
    return LocaleDefaults(
        language=(inviter.language if inviter else None) or DEFAULT_LANGUAGE,
        time_zone=(inviter.time_zone if inviter else None) or DEFAULT_TIME_ZONE,
        time_format=(inviter.time_format if inviter else None) or DEFAULT_TIME_FORMAT,
        country=country.upper() if country else None,
    )


def guessable_words(session: Session, invitation: Invitation) -> list[str]:
    """What an attacker knows about the invitee: names, address, the org's name."""
    record = session.get(CrmRecord, invitation.record_id) if invitation.record_id else None
    org = session.get(Org, invitation.org_id)
    words = [invitation.address]
    if record is not None:
        words += [record.first_name, record.last_name]
    if org is not None:
        words.append(org.name)
        if org.portal is not None:
            words += [org.portal.name, org.portal.slug]
    return [word for word in words if word]


# -- the two steps --------------------------------------------------------------------------


def accept_invitation(
    session: Session,
    token: str,
    *,
    password: str,
    language: str | None = None,
    time_zone: str | None = None,
    time_format: str | None = None,
    country: str | None = None,
    now: datetime | None = None,
) -> PortalUser:
    """Accept the invitation behind ``token``: the user is confirmed with a password.

    The locale defaults to the inviting CRM user's (:func:`locale_defaults`). Raises
    AcceptanceError for a token that cannot be used, InvalidInput (PasswordRejected for
    the password) for a bad password or locale, and InvalidTransition when the user cannot
    accept (removed in the meantime, say).
    """
    now = now or utcnow()
    invitation = usable_invitation(session, token, EmailKind.ACCEPT_INVITATION, now)
    check_password(password, guessable_words(session, invitation))
    check_locale(language, time_zone, time_format, country)
    defaults = locale_defaults(session, invitation)
    password_hash = hash_password(password)  # slow on purpose: before any lock is taken
    user = _use(session, invitation, lifecycle.Action.ACCEPT, now)
    user.password_hash = password_hash
    user.language = language or defaults.language
    user.time_zone = time_zone or defaults.time_zone
    user.time_format = time_format or defaults.time_format
    user.country = country or defaults.country
    user.confirmed_at = now
    user.updated_at = now
    session.flush()
    return user


def confirm_email(session: Session, token: str, now: datetime | None = None) -> PortalUser:
    """Confirm a changed email address: a login-suspended user is confirmed again.

    Access comes back with the password the user already has; it is not touched.
    """
    now = now or utcnow()
    invitation = usable_invitation(session, token, EmailKind.CONFIRM_EMAIL, now)
    user = _use(session, invitation, lifecycle.Action.CONFIRM_EMAIL, now)
    user.confirmed_at = now
    user.updated_at = now
    session.flush()
    return user


__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "AcceptanceError",
    "AcceptanceProblem",
    "LocaleDefaults",
    "accept_invitation",
    "check_password",
    "confirm_email",
    "locale_defaults",
]
