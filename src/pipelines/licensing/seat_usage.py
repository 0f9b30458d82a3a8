"""Who holds an org's licence seats, by status, and which invitees' invitations expired.

The rule, decided here and written down in the README: **an invitee whose invitation
expired keeps its seat** until it is removed (or accepts a new invitation, or is
deactivated after accepting). The seat was given to that person when they were invited,
and an admin who reinvites them must not find it taken by someone else meanwhile. Such a
user shows as ``invitation_expired`` (its stored status stays ``invited``, so it is still
under the Unconfirmed filter), and ``licences usage`` counts them apart so an admin sees
why a seat is taken and can free it (``portalflow users remove``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    Invitation,
    InvitationStatus,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
)
from portalflow.pipelines.tenancy import orgs

from . import licences

INVITATION_EXPIRED = "invitation_expired"
_LIVE = (InvitationStatus.QUEUED, InvitationStatus.SENDING, InvitationStatus.SENT)


def invitation_expired() -> ColumnElement[bool]:
    """An invited user none of whose invitations is live, and one of them expired."""

    def has(statuses: Iterable[InvitationStatus]) -> ColumnElement[bool]:
        return exists().where(
            Invitation.portal_user_id == PortalUser.id, Invitation.status.in_(list(statuses))
        )

    return and_(
        PortalUser.status == PortalUserStatus.INVITED,
        ~has(_LIVE),
        has([InvitationStatus.EXPIRED]),
    )


def expired_invitees(session: Session, user_ids: Iterable[int]) -> set[int]:
    """Which of ``user_ids`` are invitees whose invitation expired (one query)."""
    wanted = list(user_ids)
    if not wanted:
        return set()
    query = select(PortalUser.id).where(PortalUser.id.in_(wanted), invitation_expired())
    return set(session.scalars(query))


def display_status(status: PortalUserStatus, expired: bool) -> str:
    """The status an admin reads: ``invitation_expired`` for an invitee whose link expired."""
    return INVITATION_EXPIRED if expired and status == PortalUserStatus.INVITED else status.value


@dataclass
class TypeSeats:
    """One user type's seats: its limit, and its users by the status an admin reads."""

    user_type_id: int
    name: str
    limit: int
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def held(self) -> int:
        return sum(n for status, n in self.by_status.items() if _holds(status))

    def summary(self) -> str:
        """``7 of 10 held: 5 confirmed, 2 invitation_expired``."""
        parts = [f"{n} {status}" for status, n in self.by_status.items() if n and _holds(status)]
        return f"{self.held} of {self.limit} held" + (f": {', '.join(parts)}" if parts else "")


def seat_usage(session: Session, org_id: int) -> list[TypeSeats]:
    """Every user type of the org with its seat limit and its users counted by status."""
    org = orgs.get_org(session, org_id)
    counts = session.execute(
        select(PortalUser.user_type_id, PortalUser.status, func.count())
        .where(PortalUser.org_id == org_id)
        .group_by(PortalUser.user_type_id, PortalUser.status)
    ).all()
    expired = session.execute(
        select(PortalUser.user_type_id, func.count())
        .where(PortalUser.org_id == org_id, invitation_expired())
        .group_by(PortalUser.user_type_id)
    ).all()
    expired_by_type = dict(expired)
    result = []
    for user_type in orgs.list_user_types(session, org_id):
        seats = TypeSeats(user_type.id, user_type.name, _limit(session, org, user_type))
        for type_id, status, n in counts:
            if type_id == user_type.id:
                seats.by_status[status.value] = n
        lapsed = expired_by_type.get(user_type.id, 0)
        if lapsed:
            seats.by_status[PortalUserStatus.INVITED.value] -= lapsed
            seats.by_status[INVITATION_EXPIRED] = lapsed
        result.append(seats)
    return result


def _limit(session: Session, org: Org, user_type: PortalUserType) -> int:
    """What the type may hold now: the seats left plus those held."""
    left = licences.remaining_capacity(session, org, user_type)
    return left + licences.holders_of(session, user_type.id)


def _holds(status: str) -> bool:
    if status == INVITATION_EXPIRED:
        return True
    return licences.is_holding(PortalUserStatus(status))
