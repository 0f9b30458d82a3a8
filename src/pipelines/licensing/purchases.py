"""Purchased portal user licences: recording purchases, what is in force on a day, history,
and the org's licence alert settings. Every function flushes; none commits.

A purchase says "from ``effective_from`` on, this user type holds ``quantity`` licences",
until a later purchase of the same type takes effect (which may raise or lower it). Two
purchases with the same effective date: the one recorded last wins.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    Edition,
    InvitationPreference,
    LicencePurchase,
    Org,
    PortalUserType,
    utcnow,
)
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.tenancy.orgs import get_org, get_user_type
from portalflow.pipelines.users.addresses import validate_sender_address

MIN_NEAR_LIMIT_PERCENT = 1
MAX_NEAR_LIMIT_PERCENT = 100


def add_user_type_with_licences(
    session: Session,
    org_id: int,
    *,
    name: str,
    module: str,
    licences: int,
    invitation_preference: InvitationPreference | str = InvitationPreference.EMAIL,
    invitation_field: str | None = None,
) -> PortalUserType:
    """``orgs.add_user_type``, then buy ``licences`` licences for it, in force from today."""
    added = orgs.add_user_type(
        session,
        org_id,
        name=name,
        module=module,
        invitation_preference=invitation_preference,
        invitation_field=invitation_field,
    )
    record_purchase(session, org_id, added.id, licences, utcnow().date())
    return added


def record_purchase(
    session: Session,
    org_id: int,
    user_type_id: int,
    quantity: int,
    effective_from: date,
    note: str | None = None,
) -> LicencePurchase:
    """Record that a paid user type holds ``quantity`` licences from ``effective_from`` on.

    Refused (InvalidInput) for the free Client Portal type, for trial orgs and for a
    negative quantity; NotFound when the org or the user type (in that org) does not exist.
    """
    org = get_org(session, org_id)
    user_type = get_user_type(session, org_id, user_type_id)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise InvalidInput(f"licence quantity {quantity!r} must be a whole number >= 0")
    if not isinstance(effective_from, date):
        raise InvalidInput(f"effective date {effective_from!r} must be a date (YYYY-MM-DD)")
    if org.edition == Edition.TRIAL:
        raise InvalidInput(
            f"org {org_id} is on a trial, which cannot buy licences; upgrade to a paid edition"
        )
    if user_type.is_client_portal:
        raise InvalidInput(
            f"user type {user_type.name!r} is the Client Portal, which is free "
            "(up to 10,000 users); it needs no licences"
        )
    purchase = LicencePurchase(
        org_id=org_id,
        user_type_id=user_type.id,
        quantity=quantity,
        effective_from=effective_from,
        note=(note or "").strip() or None,
    )
    session.add(purchase)
    session.flush()
    return purchase


def licences_in_force(session: Session, user_type_id: int, day: date) -> int:
    """Licences the user type holds on ``day``: the latest purchase in force then, else 0."""
    query = (
        select(LicencePurchase.quantity)
        .where(LicencePurchase.user_type_id == user_type_id, LicencePurchase.effective_from <= day)
        .order_by(LicencePurchase.effective_from.desc(), LicencePurchase.id.desc())
        .limit(1)
    )
    return session.scalar(query) or 0


def in_force_expression(day: date) -> ColumnElement[int]:
    """A correlated scalar subquery: licences ``PortalUserType`` holds on ``day`` (0 if none).

    Usable in any query that selects from ``portal_user_types`` (e.g. a reconciliation that
    covers many orgs at once); runs on SQLite and PostgreSQL.
    """
    latest = (
        select(LicencePurchase.quantity)
        .where(
            LicencePurchase.user_type_id == PortalUserType.id,
            LicencePurchase.effective_from <= day,
        )
        .order_by(LicencePurchase.effective_from.desc(), LicencePurchase.id.desc())
        .limit(1)
        .correlate(PortalUserType)
        .scalar_subquery()
    )
    return func.coalesce(latest, 0)


def licences_in_force_for_org(session: Session, org_id: int, day: date) -> dict[int, int]:
    """``{user_type_id: licences in force on day}`` for every paid type of the org, in one query.

    The Client Portal type is left out: it needs no licences (its free allowance is
    ``licensing.licences.CLIENT_PORTAL_FREE_USERS``). An unknown org gives ``{}``.
    """
    query = (
        select(PortalUserType.id, in_force_expression(day))
        .where(PortalUserType.org_id == org_id, ~PortalUserType.is_client_portal)
        .order_by(PortalUserType.id)
    )
    return {type_id: int(quantity) for type_id, quantity in session.execute(query)}


def history(
    session: Session, org_id: int, user_type_id: int | None = None
) -> list[LicencePurchase]:
    """The org's purchases (of one type when given), newest effective date first."""
    get_org(session, org_id)
    query = select(LicencePurchase).where(LicencePurchase.org_id == org_id)
    if user_type_id is not None:
        get_user_type(session, org_id, user_type_id)
        query = query.where(LicencePurchase.user_type_id == user_type_id)
    order = (LicencePurchase.effective_from.desc(), LicencePurchase.id.desc())
    return list(session.scalars(query.order_by(*order)))


def set_alert_settings(
    session: Session,
    org_id: int,
    *,
    admin_email: str | None = None,
    near_limit_percent: int | None = None,
) -> Org:
    """Set who hears licence alerts and at what use a type counts as near its limit.

    None leaves a setting as it is; an empty ``admin_email`` clears the address (alerts are
    then only listed, not emailed). ``near_limit_percent`` is a whole number from 1 to 100.
    """
    org = get_org(session, org_id)
    if near_limit_percent is not None and (
        isinstance(near_limit_percent, bool)
        or not isinstance(near_limit_percent, int)
        or not MIN_NEAR_LIMIT_PERCENT <= near_limit_percent <= MAX_NEAR_LIMIT_PERCENT
    ):
        raise InvalidInput(
            f"near-limit percent {near_limit_percent!r} must be a whole number from "
            f"{MIN_NEAR_LIMIT_PERCENT} to {MAX_NEAR_LIMIT_PERCENT}"
        )
    if admin_email is not None:
        admin_email = (
            validate_sender_address(admin_email, "admin email") if admin_email.strip() else None
        )
        org.admin_email = admin_email
    if near_limit_percent is not None:
        org.near_limit_percent = near_limit_percent
    session.flush()
    return org
