"""Read-only lookups behind the recipient's pages: what a link is, and where a short code goes.

Nothing here writes: mail scanners and link previewers fetch every link, so showing a page
must never use, expire or touch a token. What a page may say is decided here too: a link
that is unknown, of the other kind, for another portal, or never delivered gets the one
neutral answer (``unknown``), so a page never tells whether a token ever existed. Used,
expired and superseded links get their own answer: whoever holds one was sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from portalflow.models import AcceptanceProblem, Channel, EmailKind, Invitation, Org, utcnow
from portalflow.pipelines.delivery.outgoing_email import invitation_link

from . import tokens
from .acceptance import AcceptanceError, LocaleDefaults, locale_defaults
from .acceptance import usable_invitation as _usable_invitation

# Longer than any token we issue (43 characters) or SMS code: not worth a lookup.
MAX_TOKEN_LENGTH = 200

# What a page may tell of each refusal; everything else is the neutral "unknown".
_SHOWN = {
    AcceptanceProblem.USED: AcceptanceProblem.USED,
    AcceptanceProblem.EXPIRED: AcceptanceProblem.EXPIRED,
    AcceptanceProblem.SUPERSEDED: AcceptanceProblem.SUPERSEDED,
}


def shown_problem(problem: AcceptanceProblem) -> AcceptanceProblem:
    """The problem a page tells: used, expired, superseded, or the neutral unknown."""
    return _SHOWN.get(problem, AcceptanceProblem.UNKNOWN)


@dataclass(frozen=True)
class LinkView:
    """What a recipient's page shows for one link: a form (problem None) or a problem."""

    problem: AcceptanceProblem | None
    language: str | None  # the invitation's; None when the link is not ours to describe
    org_name: str | None = None
    portal_name: str | None = None
    address: str | None = None
    defaults: LocaleDefaults | None = None


def describe_link(
    session: Session,
    token: str,
    kind: EmailKind,
    portal_slug: str,
    now: datetime | None = None,
) -> LinkView:
    """What the ``kind`` page of ``portal_slug`` shows for ``token``; reads only."""
    invitation = _find(session, token)
    org = session.get(Org, invitation.org_id) if invitation is not None else None
    if (
        invitation is None
        or invitation.kind != kind
        or org is None
        or org.portal is None
        or org.portal.slug != portal_slug
    ):
        return LinkView(problem=AcceptanceProblem.UNKNOWN, language=None)
    try:
        _usable_invitation(session, token, kind, now or utcnow())
    except AcceptanceError as exc:
        return LinkView(problem=shown_problem(exc.problem), language=invitation.language)
    return LinkView(
        problem=None,
        language=invitation.language,
        org_name=org.name,
        portal_name=org.portal.name,
        address=invitation.address,
        defaults=locale_defaults(session, invitation),
    )


def short_code_target(session: Session, code: str, portal_base_url: str) -> str | None:
    """The page an SMS short code opens (whatever its state), or None for no SMS of ours."""
    invitation = _find(session, code)
    if invitation is None or invitation.channel != Channel.SMS:
        return None
    org = session.get(Org, invitation.org_id)
    if org is None or org.portal is None:
        return None
    return invitation_link(portal_base_url, org.portal.slug, invitation.kind, code)


def _find(session: Session, token: str) -> Invitation | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return tokens.find_invitation(session, token)
