"""Setting up a tenant: org, portal, the Client Portal type, more user types, CRM users."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    CLIENT_PORTAL_MODULE,
    CLIENT_PORTAL_NAME,
    CrmUser,
    DataCentre,
    Edition,
    InvitationPreference,
    Org,
    Portal,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    RecordAccess,
)
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.users.addresses import normalise_domain, validate_sender_address

from .countries import INDIA, default_data_centre, validate_country

MAX_USER_TYPES = 5
E = TypeVar("E", bound=StrEnum)
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def create_org(
    session: Session,
    *,
    name: str,
    company_domain: str,
    country: str,
    edition: Edition | str = Edition.FREE,
    data_centre: DataCentre | str | None = None,
    portal_name: str | None = None,
    portal_slug: str | None = None,
    from_email: str | None = None,
    from_name: str | None = None,
    reply_to: str | None = None,
) -> Org:
    """Create an org with its portal and its Client Portal user type (flushed, not committed).

    ``data_centre`` defaults from the country (see ``DATA_CENTRE_COUNTRIES``).
    """
    if not name.strip():
        raise InvalidInput("org name must not be empty")
    country = validate_country(country)
    if data_centre is None:
        data_centre = default_data_centre(country)
    org = Org(
        name=name.strip(),
        company_domain=normalise_domain(company_domain),
        country=country,
        edition=_enum_value(Edition, edition, "edition"),
        data_centre=_enum_value(DataCentre, data_centre, "data centre"),
        default_from_email=validate_sender_address(from_email, "From") if from_email else None,
        default_from_name=from_name,
        default_reply_to=validate_sender_address(reply_to, "Reply-To") if reply_to else None,
    )
    session.add(org)
    session.flush()
    slug = _unique_slug(session, portal_slug or name, explicit=portal_slug is not None)
    session.add(Portal(org_id=org.id, name=(portal_name or name).strip(), slug=slug))
    session.add(
        PortalUserType(
            org_id=org.id,
            name=CLIENT_PORTAL_NAME,
            module=CLIENT_PORTAL_MODULE,
            invitation_preference=InvitationPreference.EMAIL,
            invitation_field="email",
            is_client_portal=True,
        )
    )
    session.flush()
    return org


def add_user_type(
    session: Session,
    org_id: int,
    *,
    name: str,
    module: str,
    invitation_preference: InvitationPreference | str = InvitationPreference.EMAIL,
    invitation_field: str | None = None,
) -> PortalUserType:
    """Add a (paid) user type; at most five per org, none on a trial.

    To buy its licences at once, use ``licensing.purchases.add_user_type_with_licences``.
    """
    org = get_org(session, org_id)
    preference = _enum_value(InvitationPreference, invitation_preference, "invitation preference")
    if org.edition == Edition.TRIAL:
        raise InvalidInput("a trial org has only the Client Portal user type; upgrade to add more")
    count = session.scalar(select(func.count()).where(PortalUserType.org_id == org_id)) or 0
    if count >= MAX_USER_TYPES:
        raise InvalidInput(f"an org may have at most {MAX_USER_TYPES} user types")
    if preference == InvitationPreference.PHONE and org.country != INDIA:
        raise InvalidInput("phone invitation preference is only for orgs registered in India")
    name = name.strip()
    if not name or not module.strip():
        raise InvalidInput("a user type needs a name and a module")
    if _taken(session, PortalUserType.id, PortalUserType.org_id, PortalUserType.name, org_id, name):
        raise InvalidInput(f"user type {name!r} already exists in org {org_id}")
    user_type = PortalUserType(
        org_id=org_id,
        name=name,
        module=module.strip(),
        invitation_preference=preference,
        invitation_field=invitation_field
        or ("email" if preference == InvitationPreference.EMAIL else "phone"),
    )
    session.add(user_type)
    session.flush()
    return user_type


def add_crm_user(
    session: Session,
    org_id: int,
    *,
    name: str,
    email: str,
    modules: Iterable[str],
    record_access: RecordAccess | str = RecordAccess.ALL,
    language: str = "en",
) -> CrmUser:
    """Add a CRM user who may invite records of ``modules``."""
    get_org(session, org_id)
    email = validate_sender_address(email, "CRM user email")
    if _taken(session, CrmUser.id, CrmUser.org_id, CrmUser.email, org_id, email):
        raise InvalidInput(f"CRM user {email} already exists in org {org_id}")
    user = CrmUser(
        org_id=org_id,
        name=name.strip(),
        email=email,
        module_permissions=sorted({module.strip() for module in modules if module.strip()}),
        record_access=_enum_value(RecordAccess, record_access, "record access"),
        language=language,
    )
    session.add(user)
    session.flush()
    return user


def set_invitation_preference(
    session: Session,
    org_id: int,
    user_type_id: int,
    *,
    preference: InvitationPreference | str,
    field: str | None = None,
) -> PortalUserType:
    """Change how a user type invites; refused once the type has users."""
    org = get_org(session, org_id)
    user_type = get_user_type(session, org_id, user_type_id)
    wanted = _enum_value(InvitationPreference, preference, "invitation preference")
    if wanted == InvitationPreference.PHONE and org.country != INDIA:
        raise InvalidInput("phone invitation preference is only for orgs registered in India")
    if user_type.is_client_portal and wanted != InvitationPreference.EMAIL:
        raise InvalidInput("the Client Portal user type invites by email")
    has_users = session.scalar(
        select(PortalUser.id)
        .where(
            PortalUser.user_type_id == user_type.id,
            PortalUser.status != PortalUserStatus.REMOVED,
        )
        .limit(1)
    )
    if has_users is not None:
        raise InvalidInput(
            f"user type {user_type.name!r} already has users; its invitation preference "
            "cannot change (contact support)"
        )
    user_type.invitation_preference = wanted
    user_type.invitation_field = field or (
        "email" if wanted == InvitationPreference.EMAIL else "phone"
    )
    session.flush()
    return user_type


def configure_sms(
    session: Session,
    org_id: int,
    *,
    sender_id: str | None = None,
    whitespace_tolerant: bool | None = None,
) -> Org:
    """Set the DLT sender id and how strictly an SMS must match its DLT template."""
    org = get_org(session, org_id)
    if sender_id is not None:
        sender_id = sender_id.strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{3,11}", sender_id):
            raise InvalidInput(f"sender id {sender_id!r} must be 3 to 11 letters or digits")
        org.sms_sender_id = sender_id
    if whitespace_tolerant is not None:
        org.sms_whitespace_tolerant = whitespace_tolerant
    session.flush()
    return org


def update_org(
    session: Session,
    org_id: int,
    *,
    name: str | None = None,
    portal_name: str | None = None,
    portal_slug: str | None = None,
    edition: Edition | str | None = None,
    data_centre: DataCentre | str | None = None,
    from_email: str | None = None,
    from_name: str | None = None,
    reply_to: str | None = None,
) -> Org:
    """Change what an org was created with; None leaves a value, "" clears a sender field.

    The portal stays through every change (renaming it sends nobody anything). An edition
    change never goes to ``trial``; a trial that falls to Free keeps its trial start, so
    reconciliation schedules the portal's deletion; a paid edition cancels any deletion.
    """
    org = get_org(session, org_id)
    if name is not None:
        if not name.strip():
            raise InvalidInput("org name must not be empty")
        org.name = name.strip()
    portal = session.scalar(select(Portal).where(Portal.org_id == org_id))
    if portal is None:
        raise NotFound(f"org {org_id} has no portal")
    if portal_name is not None:
        if not portal_name.strip():
            raise InvalidInput("portal name must not be empty")
        portal.name = portal_name.strip()
    if portal_slug is not None and _slug_base(portal_slug) != portal.slug:
        portal.slug = _unique_slug(session, portal_slug, explicit=True)
    if edition is not None:
        _change_edition(org, _enum_value(Edition, edition, "edition"))
    if data_centre is not None:
        org.data_centre = _enum_value(DataCentre, data_centre, "data centre")
    if from_email is not None:
        org.default_from_email = (
            validate_sender_address(from_email, "From") if from_email.strip() else None
        )
    if from_name is not None:
        org.default_from_name = from_name.strip() or None
    if reply_to is not None:
        org.default_reply_to = (
            validate_sender_address(reply_to, "Reply-To") if reply_to.strip() else None
        )
    session.flush()
    return org


def _change_edition(org: Org, wanted: Edition) -> None:
    if wanted == org.edition:
        return
    if wanted == Edition.TRIAL:
        raise InvalidInput(
            f"org {org.id} is on the {org.edition.value} edition; only a new org starts a trial"
        )
    if org.edition == Edition.TRIAL:
        # The trial's start decides when a fall to Free deletes the portal's details.
        org.trial_started_at = org.trial_started_at or org.created_at
    if wanted.is_paid:
        org.deletion_scheduled_for = None  # upgrading keeps the portal
    org.edition = wanted


def get_org(session: Session, org_id: int) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound(f"org {org_id} does not exist")
    return org


def get_user_type(session: Session, org_id: int, user_type_id: int) -> PortalUserType:
    """The user type, refused if it belongs to another org."""
    user_type = session.get(PortalUserType, user_type_id)
    if user_type is None or user_type.org_id != org_id:
        raise NotFound(f"user type {user_type_id} does not exist in org {org_id}")
    return user_type


def get_crm_user(session: Session, org_id: int, crm_user_id: int) -> CrmUser:
    """The CRM user, refused if they belong to another org."""
    user = session.get(CrmUser, crm_user_id)
    if user is None or user.org_id != org_id:
        raise NotFound(f"CRM user {crm_user_id} does not exist in org {org_id}")
    return user


def list_orgs(session: Session) -> list[Org]:
    return list(session.scalars(select(Org).order_by(Org.id)))


def list_user_types(session: Session, org_id: int) -> list[PortalUserType]:
    get_org(session, org_id)
    query = select(PortalUserType).where(PortalUserType.org_id == org_id)
    return list(session.scalars(query.order_by(PortalUserType.id)))


def list_crm_users(session: Session, org_id: int) -> list[CrmUser]:
    get_org(session, org_id)
    query = select(CrmUser).where(CrmUser.org_id == org_id)
    return list(session.scalars(query.order_by(CrmUser.id)))


def org_summaries(session: Session, found: Iterable[Org]) -> list[dict[str, Any]]:
    """Plain summaries of orgs with their portal and Client Portal type, in three queries."""
    found = list(found)
    ids = [org.id for org in found]
    portals = {
        portal.org_id: portal
        for portal in session.scalars(select(Portal).where(Portal.org_id.in_(ids)))
    }
    client_portals = {
        org_id: user_type_id
        for org_id, user_type_id in session.execute(
            select(PortalUserType.org_id, PortalUserType.id).where(
                PortalUserType.org_id.in_(ids), PortalUserType.is_client_portal
            )
        )
    }
    summaries = []
    for org in found:
        portal = portals.get(org.id)
        summaries.append(
            {
                "id": org.id,
                "name": org.name,
                "company_domain": org.company_domain,
                "country": org.country,
                "edition": org.edition.value,
                "data_centre": org.data_centre.value,
                "portal_name": portal.name if portal else None,
                "portal_slug": portal.slug if portal else None,
                "client_portal_user_type_id": client_portals.get(org.id),
                "from_email": org.default_from_email,
                "from_name": org.default_from_name,
                "reply_to": org.default_reply_to,
            }
        )
    return summaries


def _taken(
    session: Session, id_column: Any, org_column: Any, column: Any, org_id: int, value: str
) -> bool:
    """True when ``column`` already holds ``value`` (ignoring case) in the org."""
    query = select(id_column).where(org_column == org_id, func.lower(column) == value.lower())
    return session.scalar(query.limit(1)) is not None


def _slug_base(wanted: str) -> str:
    return _SLUG_UNSAFE.sub("-", wanted.lower()).strip("-")[:50] or "portal"


def _unique_slug(session: Session, wanted: str, *, explicit: bool) -> str:
    base = _slug_base(wanted)
    taken = set(session.scalars(select(Portal.slug).where(Portal.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    if explicit:
        raise InvalidInput(f"portal slug {base!r} is already taken")
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def _enum_value(enum_cls: type[E], value: object, label: str) -> E:
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_cls)
        raise InvalidInput(f"{label} {value!r} is not one of: {allowed}") from None
