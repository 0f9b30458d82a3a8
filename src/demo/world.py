"""The demo's world: orgs, a thousand contacts, SMS agents, and every failure reason."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.demo.plan import RunPlan
from portalflow.demo.sms_world import seed_sms
from portalflow.models import (
    Channel,
    CrmRecord,
    CrmUser,
    Edition,
    Org,
    PortalUserType,
    RecordAccess,
)
from portalflow.pipelines.invitations import suppressions
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.tenancy import orgs

FIRST_NAMES = ("Aarav", "Aiko", "Amara", "Ana", "Ben", "Chloé", "Diego", "Elif", "Emma", "Fatima")
LAST_NAMES = ("Brown", "Dubois", "García", "Ito", "Kapoor", "Müller", "Okafor", "Silva", "Weiser")
CUSTOMER_DOMAINS = ("example.org", "example.net", "customer.example", "retail.example")

# One special record per reason that can be seeded on a record; the rest come from the runs.
SPECIAL_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("company_domain", {"email": "ops@zylker.com"}),
    ("company_domain", {"email": "it@eu.zylker.com"}),
    ("awaiting_approval", {"approval_locked": True}),
    ("under_review", {"review_locked": True}),
    ("no_consent", {"processing_basis": "consent", "consent_given": False}),
    ("unsupported_characters", {"email": "jürgen@example.org"}),
    ("anonymous_domain", {"email": "burner@mailinator.com"}),
    ("in_recycle_bin", {"in_recycle_bin": True}),
    ("invalid_address", {"email": None}),
    ("invalid_address", {"email": "no-at-sign.example.org"}),
)


@dataclass(frozen=True)
class DemoWorld:
    warm_up: RunPlan  # must finish first: it makes some records portal users already
    runs: list[RunPlan]


def seed(
    session: Session,
    *,
    config: Settings,
    dlt_file: Path,
    contacts: int = 1000,
    seed: int = 7,
) -> DemoWorld:
    """Create the demo orgs and records (flushed); return the invites to run.

    ``dlt_file`` is where the demo writes the DLT export it then imports, like an admin would.
    """
    rng = random.Random(seed)
    zylker = _seed_zylker(session, rng, contacts)
    trial, trial_admin, trial_rows = _seed_trial(session, rng)
    sms_runs = seed_sms(session, zylker.org, zylker.rep, config=config, dlt_file=dlt_file)
    session.flush()
    all_ids = zylker.crm_ids
    return DemoWorld(
        warm_up=RunPlan(
            "Partners (earlier invite)",
            zylker.org.id,
            zylker.partners.id,
            zylker.colleague.id,
            all_ids[-3:],
        ),
        runs=[
            RunPlan(
                "Client Portal bulk invite",
                zylker.org.id,
                zylker.client_portal.id,
                zylker.rep.id,
                [*all_ids, "C-DELETED-1", "C-DELETED-2"],
            ),
            RunPlan(
                "Invite by a Leads-only user",
                zylker.org.id,
                zylker.client_portal.id,
                zylker.leads_only.id,
                all_ids[-5:-3],
            ),
            RunPlan(
                "Trial org (10-user cap)",
                trial.id,
                next(t for t in trial.user_types if t.is_client_portal).id,
                trial_admin.id,
                [row["crm_id"] for row in trial_rows],
            ),
            *sms_runs,
        ],
    )


@dataclass(frozen=True)
class _Zylker:
    """The demo's main org, its types and CRM users, and its contacts' CRM ids."""

    org: Org
    client_portal: PortalUserType
    partners: PortalUserType
    rep: CrmUser
    colleague: CrmUser
    leads_only: CrmUser
    crm_ids: list[str]


def _seed_zylker(session: Session, rng: random.Random, contacts: int) -> _Zylker:
    """Zylker Retail: two types, three CRM users, the contacts with every special case."""
    zylker = orgs.create_org(
        session,
        name="Zylker Retail",
        company_domain="zylker.com",
        country="IN",
        edition=Edition.ENTERPRISE,
        data_centre="in",
        from_email="portal@zylker-support.com",
        from_name="Zylker Customer Portal",
        reply_to="help@zylker-support.com",
    )
    client_portal = next(t for t in zylker.user_types if t.is_client_portal)
    partners = purchases.add_user_type_with_licences(
        session, zylker.id, name="Partners", module="Contacts", licences=25
    )
    rep = orgs.add_crm_user(
        session,
        zylker.id,
        name="Russell Brown",
        email="russell@zylker.com",
        modules=["Contacts", "Deals", "Vendors"],
        record_access=RecordAccess.OWNED,
    )
    colleague = orgs.add_crm_user(
        session, zylker.id, name="Patricia Jones", email="patricia@zylker.com", modules=["Contacts"]
    )
    leads_only = orgs.add_crm_user(
        session, zylker.id, name="Lee Marsh", email="lee@zylker.com", modules=["Leads"]
    )

    rows = [_contact(rng, n, owner_id=rep.id) for n in range(contacts)]
    # Spread the special cases through the list; the last few records feed the side runs.
    step = max(1, (contacts - 10) // (len(SPECIAL_CASES) + 2))
    for n, (_reason, overrides) in enumerate(SPECIAL_CASES):
        rows[1 + n * step].update(overrides)
    for n in (2, 3):  # a colleague's records: the rep may not invite them
        rows[n * step + 2]["owner_id"] = colleague.id
    _insert_records(session, zylker.id, rows)
    # An address that complained about an earlier email: on the org's suppression list.
    suppressions.suppress(
        session, zylker.id, Channel.EMAIL, rows[4 * step + 2]["email"], "complaint"
    )
    crm_ids = [row["crm_id"] for row in rows]
    return _Zylker(zylker, client_portal, partners, rep, colleague, leads_only, crm_ids)


def _seed_trial(session: Session, rng: random.Random) -> tuple[Org, CrmUser, list[dict[str, Any]]]:
    """A trial org with more contacts than its 10-user cap."""
    trial = orgs.create_org(
        session,
        name="Tiny Trial",
        company_domain="tinytrial.example",
        country="IN",
        edition="trial",
    )
    trial_admin = orgs.add_crm_user(
        session, trial.id, name="Ana Admin", email="ana@tinytrial.example", modules=["Contacts"]
    )
    trial_rows = [_contact(rng, n, owner_id=trial_admin.id, prefix="T") for n in range(14)]
    _insert_records(session, trial.id, trial_rows)
    return trial, trial_admin, trial_rows


def _contact(rng: random.Random, n: int, *, owner_id: int, prefix: str = "C") -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = f"{first}.{last}.{n}".lower().encode("ascii", "ignore").decode()
    return {
        "crm_id": f"{prefix}-{100000 + n}",
        "module": "Contacts",
        "first_name": first,
        "last_name": last,
        "email": f"{local}@{rng.choice(CUSTOMER_DOMAINS)}",
        "owner_id": owner_id,
        "processing_basis": "consent",
        "consent_given": True,
        "fields": {
            "company": f"{last} & Co",
            "city": rng.choice(("Pune", "Lyon", "Kyoto", "Austin")),
        },
    }


def _insert_records(session: Session, org_id: int, rows: list[dict[str, Any]]) -> None:
    defaults = {
        "approval_locked": False,
        "review_locked": False,
        "consent_given": False,
        "in_recycle_bin": False,
        "deleted": False,
        "phone": None,
    }
    session.execute(insert(CrmRecord), [{**defaults, "org_id": org_id, **row} for row in rows])
