"""The fault tests' world: one org, thousands of contacts, a bulk run started as the CLI does."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, make_engine, make_session_factory
from portalflow.pipelines.invitations import bulk
from portalflow.workers import enqueue

from ..factories import client_portal, make_inviter, make_org

# Every this-many-th record sits in the recycle bin: refused, so it must get no email.
INELIGIBLE_EVERY = 100
QUEUE = enqueue.INVITATIONS_QUEUE


@dataclass(frozen=True)
class World:
    org_id: int
    user_type_id: int
    inviter_id: int
    eligible: dict[str, str]  # crm id -> address, for the records that must get one email
    ineligible: dict[str, str]


def address(n: int) -> str:
    return f"contact{n}@customer.example.org"


def seed(database_url: str, records: int) -> World:
    """An org with ``records`` contacts, inserted in one statement like the demo data."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            org = make_org(session)
            inviter = make_inviter(session, org)
            rows = [_contact(n, org.id) for n in range(records)]
            session.execute(insert(CrmRecord), rows)
            world = World(
                org_id=org.id,
                user_type_id=client_portal(session, org).id,
                inviter_id=inviter.id,
                eligible={r["crm_id"]: r["email"] for r in rows if not r["in_recycle_bin"]},
                ineligible={r["crm_id"]: r["email"] for r in rows if r["in_recycle_bin"]},
            )
            session.commit()
            return world
    finally:
        engine.dispose()


def start_run(session: Session, world: World, chunk_size: int) -> bulk.StartedRun:
    """Write the run and its chunks, commit, then enqueue one message per chunk (the CLI's way)."""
    started = bulk.start_bulk_run(
        session,
        org_id=world.org_id,
        user_type_id=world.user_type_id,
        inviter_id=world.inviter_id,
        crm_ids=sorted([*world.eligible, *world.ineligible]),
        chunk_size=chunk_size,
    )
    session.commit()
    enqueue.enqueue_chunks(started.chunk_ids)
    return started


def _contact(n: int, org_id: int) -> dict[str, object]:
    return {
        "org_id": org_id,
        "crm_id": f"F-{n:06d}",
        "module": "Contacts",
        "first_name": "Sage",
        "last_name": f"Weiser {n}",
        "email": address(n),
        "phone": None,
        "approval_locked": False,
        "review_locked": False,
        "consent_given": False,
        "deleted": False,
        "in_recycle_bin": n % INELIGIBLE_EVERY == INELIGIBLE_EVERY - 1,
    }
