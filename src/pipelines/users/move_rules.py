"""The rules every move between user types obeys: same preference and module, room left.

Rules (PORTALS.md, "Moving users between user types"): users move only between types of the
same invitation preference (and the same module: a Vendors record does not belong in a
Contacts type); otherwise nobody moves. A move never pushes the target over its licence
limit (``licence_limit``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from portalflow.models import Org, PortalUserType, RefusalCode
from portalflow.pipelines.errors import InvalidInput, Refused
from portalflow.pipelines.licensing import licences


def check_compatible(source: PortalUserType, target: PortalUserType) -> None:
    """Refuse (InvalidInput) a move between types of another preference or module."""
    if source.invitation_preference != target.invitation_preference:
        raise InvalidInput(
            f"user type {source.name!r} invites by {source.invitation_preference.value}, "
            f"{target.name!r} by {target.invitation_preference.value}: users move only between "
            "types with the same invitation preference; nobody was moved"
        )
    if source.module != target.module:
        raise InvalidInput(
            f"user type {source.name!r} is for {source.module} records, {target.name!r} for "
            f"{target.module}: users move only between types of the same module; "
            "nobody was moved"
        )


def check_capacity(session: Session, org: Org, target: PortalUserType, holders: int) -> None:
    """Refuse (``licence_limit``) when ``holders`` more licence holders do not fit."""
    if holders == 0:
        return
    capacity = licences.remaining_capacity(session, org, target)
    if holders > capacity:
        raise Refused(
            RefusalCode.LICENCE_LIMIT,
            f"user type {target.name!r} has {capacity} licence(s) left and "
            f"{holders} of the users to move hold one; nobody was moved",
        )
