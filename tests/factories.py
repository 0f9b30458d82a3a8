"""Small builders for test data, through the same pipelines the CLI uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, CrmUser, Org, PortalUserType, RecordAccess
from portalflow.pipelines import orgs


def make_org(session: Session, **overrides: Any) -> Org:
    values: dict[str, Any] = {
        "name": "Zylker",
        "company_domain": "zylker.com",
        "country": "US",
        "edition": "enterprise",
        "from_email": "portal@zylker-support.com",
        "reply_to": "help@zylker-support.com",
    }
    values.update(overrides)
    return orgs.create_org(session, **values)


def client_portal(session: Session, org: Org) -> PortalUserType:
    session.refresh(org)
    return next(user_type for user_type in org.user_types if user_type.is_client_portal)


def make_inviter(
    session: Session,
    org: Org,
    *,
    modules: Iterable[str] = ("Contacts", "Leads", "Vendors"),
    record_access: RecordAccess = RecordAccess.ALL,
    email: str = "russell@zylker.com",
) -> CrmUser:
    return orgs.add_crm_user(
        session,
        org.id,
        name="Russell Brown",
        email=email,
        modules=modules,
        record_access=record_access,
    )


def make_record(session: Session, org: Org, crm_id: str, **overrides: Any) -> CrmRecord:
    values: dict[str, Any] = {
        "org_id": org.id,
        "crm_id": crm_id,
        "module": "Contacts",
        "first_name": "Sage",
        "last_name": "Weiser",
        "email": f"{crm_id}@customer.example.org",
    }
    values.update(overrides)
    record = CrmRecord(**values)
    session.add(record)
    session.flush()
    return record
