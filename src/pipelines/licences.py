"""How many more portal users a user type may hold (grows with purchased licences later)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import Edition, Org, PortalUser, PortalUserStatus, PortalUserType

CLIENT_PORTAL_FREE_USERS = 10_000
TRIAL_MAX_USERS = 10
# Deactivated and removed users do not hold a licence.
NON_HOLDING_STATUSES = (PortalUserStatus.DEACTIVATED, PortalUserStatus.REMOVED)


def remaining_capacity(session: Session, org: Org, user_type: PortalUserType) -> int | None:
    """Licences left for ``user_type``; None when nothing caps it yet.

    Callers that go on to invite must hold the user type's row lock (see
    ``lock_user_type``) so two concurrent runs cannot both spend the last licence.
    """
    limits: list[int] = []
    if org.edition == Edition.TRIAL:
        limits.append(TRIAL_MAX_USERS - _holders(session, PortalUser.org_id == org.id))
    if user_type.is_client_portal:
        limits.append(
            CLIENT_PORTAL_FREE_USERS - _holders(session, PortalUser.user_type_id == user_type.id)
        )
    # Purchased licences for paid user types arrive with the licence model.
    return max(0, min(limits)) if limits else None


def lock_user_type(session: Session, user_type_id: int) -> None:
    """Serialise licence spending per user type (row lock on PostgreSQL; SQLite: one writer)."""
    session.execute(
        select(PortalUserType.id).where(PortalUserType.id == user_type_id).with_for_update()
    )


def _holders(session: Session, condition: object) -> int:
    query = select(func.count()).where(
        condition,  # type: ignore[arg-type]
        PortalUser.status.not_in(NON_HOLDING_STATUSES),
    )
    return session.scalar(query) or 0
