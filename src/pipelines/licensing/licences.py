"""How many more portal users a user type may hold: free Client Portal, purchases, trial cap."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portalflow.models import Edition, Org, PortalUser, PortalUserStatus, PortalUserType, utcnow

from . import purchases

CLIENT_PORTAL_FREE_USERS = 10_000
TRIAL_MAX_USERS = 10
# Deactivated and removed users do not hold a licence.
NON_HOLDING_STATUSES = (PortalUserStatus.DEACTIVATED, PortalUserStatus.REMOVED)


def remaining_capacity(
    session: Session, org: Org, user_type: PortalUserType, day: date | None = None
) -> int:
    """Licences left for ``user_type``: what it may hold, less the users holding one.

    The Client Portal holds up to 10,000 for free; any other type holds the licences
    purchased and in force ``day`` (today by default); a trial org holds 10 in all.
    Callers that go on to add holders must hold the user type's row lock (see
    ``lock_user_type``) so two concurrent runs cannot both spend the last licence.
    """
    holders = _holders(session, PortalUser.user_type_id == user_type.id)
    purchased = 0
    if not user_type.is_client_portal:
        purchased = purchases.licences_in_force(session, user_type.id, day or utcnow().date())
    left = licence_limit(org.edition, user_type.is_client_portal, purchased) - holders
    if org.edition == Edition.TRIAL:
        left = min(left, TRIAL_MAX_USERS - _holders(session, PortalUser.org_id == org.id))
    return max(0, left)


def licence_limit(edition: Edition, client_portal: bool, purchased: int) -> int:
    """How many licence holders one user type may have: the per-type limit rule.

    The Client Portal holds up to 10,000 for free (10 on a trial); any other type holds the
    ``purchased`` licences in force. Enforcement (:func:`remaining_capacity`, which also
    caps a trial org at 10 users in all) and the nightly reconciliation both use this.
    """
    if client_portal:
        return TRIAL_MAX_USERS if edition == Edition.TRIAL else CLIENT_PORTAL_FREE_USERS
    return purchased


def lock_user_type(session: Session, user_type_id: int) -> None:
    """Serialise licence spending per user type (row lock on PostgreSQL; SQLite: one writer)."""
    session.execute(
        select(PortalUserType.id).where(PortalUserType.id == user_type_id).with_for_update()
    )


def is_holding(status: PortalUserStatus) -> bool:
    """Whether a user in ``status`` holds a licence."""
    return status not in NON_HOLDING_STATUSES


def sync_holders(session: Session, user_type_ids: Iterable[int]) -> None:
    """Recount the licence holders of these user types into their cached counter (flushed).

    Called by every step that adds holders or takes them away (new users, a status change
    across the holding line, a transfer), in the same transaction, so the counter the
    nightly reconciliation checks drifts only when something bypassed those steps. One
    UPDATE per type, in id order, so two steps over the same types lock them alike.
    """
    for user_type_id in sorted(set(user_type_ids)):
        holding = (
            select(func.count())
            .where(
                PortalUser.user_type_id == user_type_id,
                PortalUser.status.not_in(NON_HOLDING_STATUSES),
            )
            .scalar_subquery()
        )
        session.execute(
            update(PortalUserType)
            .where(PortalUserType.id == user_type_id)
            .values(holders_cached=holding)
            .execution_options(synchronize_session=False)
        )


def holders_of(session: Session, user_type_id: int) -> int:
    """How many users of the type hold a licence now (counted, not the cached counter)."""
    return _holders(session, PortalUser.user_type_id == user_type_id)


def _holders(session: Session, condition: object) -> int:
    query = select(func.count()).where(
        condition,  # type: ignore[arg-type]
        PortalUser.status.not_in(NON_HOLDING_STATUSES),
    )
    return session.scalar(query) or 0
