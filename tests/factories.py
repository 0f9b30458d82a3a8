"""Small builders for test data, through the same pipelines the CLI uses."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import CrmRecord, CrmUser, Org, PortalUserType, RecordAccess, SmsTemplateKind
from portalflow.pipelines.content.dlt import import_dlt_file
from portalflow.pipelines.content.sms_templates import edit_template, map_template, set_verification
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.tenancy import orgs


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


DLT_FIXTURES = Path(__file__).parents[2] / "shared" / "fixtures" / "dlt"
SMS_CONFIG = Settings()
SMS_BODIES: dict[SmsTemplateKind, tuple[str, str]] = {
    # kind: (CRM template, the jio-approved.csv DLT template it matches)
    SmsTemplateKind.INVITATION: (
        "Dear {{ record.first_name }}, you are invited to the {{ portal.name }} portal. "
        "Accept within 7 days: {{ invite_url }} - Zylker",
        "1207170000000000101",
    ),
    SmsTemplateKind.VERIFICATION: (
        "{{ code }} is your verification code for the {{ portal.name }} portal. "
        "Do not share it. - Zylker",
        "1207170000000000102",
    ),
    SmsTemplateKind.FORGOT_PASSWORD: (
        "Reset your {{ portal.name }} portal password here: {{ reset_url }} "
        "The link expires in {{ expiry_hours }} hours. - Zylker",
        "1207170000000000103",
    ),
}


def make_sms_org(session: Session, **overrides: Any) -> Org:
    """An Indian org named Zylker with the jio-approved.csv DLT export imported."""
    values: dict[str, Any] = {"name": "Zylker", "country": "IN", "data_centre": "in"}
    values.update(overrides)
    org = make_org(session, **values)
    import_dlt_file(session, org.id, DLT_FIXTURES / "jio-approved.csv")
    return org


def approve_sms_template(
    session: Session, org: Org, kind: SmsTemplateKind, body: str | None = None
) -> None:
    """Edit, map and approve one kind against its jio-approved.csv DLT template."""
    default_body, dlt_id = SMS_BODIES[kind]
    edit_template(session, org.id, kind, body or default_body, config=SMS_CONFIG)
    map_template(session, org.id, kind, dlt_id)
    set_verification(session, org.id, kind, "approved")


def start_and_expand(
    session: Session,
    org: Org,
    inviter: CrmUser,
    crm_ids: list[str],
    *,
    user_type_id: int | None = None,
    **options: Any,
) -> tuple[bulk.StartedRun, list[int]]:
    """Start a run and expand its chunks as the bulk_invite actor would; (run, queued ids)."""
    started = bulk.start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=user_type_id or client_portal(session, org).id,
        inviter_id=inviter.id,
        crm_ids=crm_ids,
        **options,
    )
    session.commit()
    ids = [i for chunk in started.chunk_ids for i in bulk.expand_chunk(session, chunk)]
    session.commit()
    return started, ids
