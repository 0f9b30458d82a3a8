"""The demo's SMS side: DLT-approved templates, field agents invited by SMS, and failures."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.demo.plan import RunPlan
from portalflow.models import (
    CrmRecord,
    CrmUser,
    Org,
    PortalUserType,
    SmsTemplateKind,
    VerificationStatus,
)
from portalflow.pipelines.content import dlt, sms_templates
from portalflow.pipelines.delivery import credits
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.tenancy import orgs

SIGNATURE = "- Zylker Retail"
SMS_TEMPLATES: dict[SmsTemplateKind, tuple[str, str, str]] = {
    # kind: (CRM template, DLT template id, DLT content as registered)
    SmsTemplateKind.INVITATION: (
        "Dear {{ record.first_name }}, you are invited to the {{ portal.name }} portal. "
        "Accept within 7 days: {{ invite_url }} " + SIGNATURE,
        "1207170000000000901",
        "Dear {#alphanumeric#}, you are invited to the {#var#} portal. "
        "Accept within 7 days: {#url#} " + SIGNATURE,
    ),
    SmsTemplateKind.VERIFICATION: (
        "{{ code }} is your verification code for the {{ portal.name }} portal. "
        "Do not share it. " + SIGNATURE,
        "1207170000000000902",
        "{#numeric#} is your verification code for the {#var#} portal. "
        "Do not share it. " + SIGNATURE,
    ),
    SmsTemplateKind.FORGOT_PASSWORD: (
        "Reset your {{ portal.name }} portal password here: {{ reset_url }} "
        "The link expires in {{ expiry_hours }} hours. " + SIGNATURE,
        "1207170000000000903",
        "Reset your {#var#} portal password here: {#url#} "
        "The link expires in {#numeric#} hours. " + SIGNATURE,
    ),
}
ENTITY_ID = "1201170000000000901"
AGENT_NAMES = ("Arjun", "Meera", "Kabir", "Ananya", "Rohan", "Ishita", "Vikram", "Diya")
# Numbers that cannot take an SMS invitation, and the name too long for its DLT variable.
FAILING_AGENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("landline", {"phone": "+91 80 2345 6789"}),
    ("abroad", {"phone": "+1 415 555 2671"}),
    ("garbled", {"phone": "98-12"}),
    ("long name", {"first_name": "Venkataramanan Subrahmanyam Iyer"}),
)


def seed_sms(
    session: Session,
    org: Org,
    inviter: CrmUser,
    *,
    config: Settings,
    dlt_file: Path,
    agents: int = 24,
) -> list[RunPlan]:
    """Approve Zylker's SMS templates through a DLT file; return the SMS invites to run."""
    _approve_templates(session, org, config=config, dlt_file=dlt_file)
    agents_type, rows = _seed_agents(session, org, inviter, agents)
    unready, riders, kites_admin, kites_rows = _seed_unready(session)
    session.flush()
    return [
        RunPlan(
            "SMS invite (DLT-approved)",
            org.id,
            agents_type.id,
            inviter.id,
            [row["crm_id"] for row in rows],
        ),
        RunPlan(
            "SMS invite, templates not approved",
            unready.id,
            riders.id,
            kites_admin.id,
            [row["crm_id"] for row in kites_rows],
        ),
    ]


def _approve_templates(session: Session, org: Org, *, config: Settings, dlt_file: Path) -> None:
    """The sender id, the three templates edited, the DLT export imported, each mapped."""
    orgs.configure_sms(session, org.id, sender_id="ZYLKER")
    for kind, (body, _dlt_id, _content) in SMS_TEMPLATES.items():
        sms_templates.edit_template(session, org.id, kind, body, config=config)
    _write_dlt_export(dlt_file)
    dlt.import_dlt_file(session, org.id, dlt_file)
    for kind, (_body, dlt_id, _content) in SMS_TEMPLATES.items():
        sms_templates.map_template(session, org.id, kind, dlt_id)
        sms_templates.set_verification(session, org.id, kind, VerificationStatus.APPROVED)


def _seed_agents(
    session: Session, org: Org, inviter: CrmUser, agents: int
) -> tuple[PortalUserType, list[dict[str, Any]]]:
    """The SMS user type and its field agents, some failing; credits for all but one."""
    agents_type = purchases.add_user_type_with_licences(
        session,
        org.id,
        name="Field agents (SMS)",
        module="Vendors",
        invitation_preference="phone",
        licences=100,
    )
    rows = [
        {
            "crm_id": f"V-{500 + n}",
            "first_name": AGENT_NAMES[n % len(AGENT_NAMES)],
            "phone": f"+91 98{n:08d}",
        }
        for n in range(agents)
    ]
    for n, (_case, overrides) in enumerate(FAILING_AGENTS):
        rows[3 + 4 * n].update(overrides)
    _insert_vendors(session, org.id, inviter.id, rows)
    # Credits for every sendable SMS but one: the last one fails with insufficient credits.
    credits.add(session, org.id, agents - len(FAILING_AGENTS) - 1)
    return agents_type, rows


def _seed_unready(
    session: Session,
) -> tuple[Org, PortalUserType, CrmUser, list[dict[str, Any]]]:
    """An org whose SMS templates are not approved: its SMS invites all fail."""
    unready = orgs.create_org(
        session,
        name="Kolkata Kites",
        company_domain="kites.example",
        country="IN",
        data_centre="in",
    )
    riders = purchases.add_user_type_with_licences(
        session,
        unready.id,
        name="Riders",
        module="Vendors",
        invitation_preference="phone",
        licences=10,
    )
    kites_admin = orgs.add_crm_user(
        session, unready.id, name="Kiran Das", email="kiran@kites.example", modules=["Vendors"]
    )
    kites_rows = [
        {"crm_id": f"K-{n}", "first_name": "Rider", "phone": f"+91 97{n:08d}"} for n in (1, 2)
    ]
    _insert_vendors(session, unready.id, kites_admin.id, kites_rows)
    return unready, riders, kites_admin, kites_rows


def _write_dlt_export(path: Path) -> None:
    """The DLT portal's export of Zylker's templates, Jio-style, as a user would upload it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["TEMPLATE_ID", "TEMPLATE_NAME", "TEMPLATE_CONTENT", "HEADER", "STATUS", "ENTITY_ID"]
        )
        for kind, (_body, dlt_id, content) in SMS_TEMPLATES.items():
            writer.writerow(
                [dlt_id, f"portal_{kind.value}", content, "ZYLKER", "Approved", ENTITY_ID]
            )


def _insert_vendors(
    session: Session, org_id: int, owner_id: int, rows: list[dict[str, Any]]
) -> None:
    session.execute(
        insert(CrmRecord),
        [
            {
                "org_id": org_id,
                "module": "Vendors",
                "owner_id": owner_id,
                "approval_locked": False,
                "review_locked": False,
                "consent_given": False,
                "in_recycle_bin": False,
                "deleted": False,
                "email": None,
                "last_name": "Rao",
                **row,
            }
            for row in rows
        ],
    )
