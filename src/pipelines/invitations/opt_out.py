"""One-click opt-out (RFC 8058): a signed link per invitation that stops an org's invitations.

Every invitation email carries ``List-Unsubscribe`` and ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` pointing at ``<portal base>/unsubscribe/<token>``, and the
same link visibly in its footer. The token is the invitation id and an HMAC-SHA256 of it
under the deployment's link key (:mod:`portalflow.pipelines.invitations.link_keys`): nothing is
stored for it, it names no address, and it cannot be forged for another invitation. A GET
of the link only shows what a POST would do (mail scanners fetch links); the POST, whether
a mailbox provider's one-click or the page's button, puts the invitation's address on its
org's suppression list as ``opted_out``, which every later invitation checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy.orm import Session

from portalflow.models import Channel, Invitation, Org, OutcomeCode

from . import suppressions

_SIGNATURE_BYTES = 16
_PURPOSE = b"portalflow opt-out v1:"


def opt_out_token(key: bytes, invitation_id: int) -> str:
    """The token of ``invitation_id``'s opt-out link: ``<id>.<signature>``."""
    return f"{invitation_id}.{_signature(key, invitation_id)}"


def opt_out_link(portal_base_url: str, token: str) -> str:
    return f"{portal_base_url.rstrip('/')}/unsubscribe/{token}"


def invitation_of(key: bytes, token: str) -> int | None:
    """The invitation id a well-signed token names, else None (checked in constant time)."""
    number, _, signature = token.partition(".")
    if not (number.isdigit() and 0 < len(number) <= 19 and signature):
        return None
    invitation_id = int(number)
    if not hmac.compare_digest(signature, _signature(key, invitation_id)):
        return None
    return invitation_id


@dataclass(frozen=True)
class OptOutTarget:
    """What an opt-out link stops: the org's invitations to one address."""

    org_id: int
    org_name: str
    channel: Channel
    address: str
    already: bool


def describe(session: Session, key: bytes, token: str) -> OptOutTarget | None:
    """What the link would stop, without changing anything; None for a link that is not ours."""
    invitation_id = invitation_of(key, token)
    invitation = session.get(Invitation, invitation_id) if invitation_id else None
    if invitation is None or not invitation.address:
        return None
    org = session.get_one(Org, invitation.org_id)
    already = bool(
        suppressions.suppressed_among(session, org.id, invitation.channel, [invitation.address])
    )
    return OptOutTarget(org.id, org.name, invitation.channel, invitation.address, already)


def opt_out(session: Session, key: bytes, token: str) -> OptOutTarget | None:
    """Suppress the link's address for its org as ``opted_out`` (idempotent; flushed)."""
    target = describe(session, key, token)
    if target is None:
        return None
    invitation_id = invitation_of(key, token)
    suppressions.suppress(
        session,
        target.org_id,
        target.channel,
        target.address,
        OutcomeCode.OPTED_OUT,
        invitation_id=invitation_id,
    )
    return target


def masked(address: str) -> str:
    """``sage.wong@example.org`` -> ``s***@example.org``: enough to recognise, not to harvest."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else f"{address[:3]}***{address[-2:]}"


def _signature(key: bytes, invitation_id: int) -> str:
    digest = hmac.new(key, _PURPOSE + str(invitation_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_SIGNATURE_BYTES]).rstrip(b"=").decode()
