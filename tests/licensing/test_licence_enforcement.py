"""Licences are enforced at invite and activate time, atomically, against purchases in force."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    RefusalCode,
    make_session_factory,
    utcnow,
)
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.ops import reports
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import user_actions
from portalflow.pipelines.users.lifecycle import UserFilter
from portalflow.pipelines.users.user_actions import BulkAction

from ..factories import make_inviter, make_org, make_record, start_and_expand


def paid_world(session: Session, licences: int | None, records: int) -> dict[str, Any]:
    org = make_org(session)
    inviter = make_inviter(session, org, modules=["Vendors"])
    if licences is None:
        vendors = orgs.add_user_type(session, org.id, name="Vendors", module="Vendors")
    else:
        vendors = purchases.add_user_type_with_licences(
            session, org.id, name="Vendors", module="Vendors", licences=licences
        )
    for n in range(records):
        make_record(session, org, f"v{n}", module="Vendors")
    session.commit()
    return {"org": org, "inviter": inviter, "type": vendors}


def invite(session: Session, world: dict[str, Any], crm_ids: list[str]) -> dict[str, Any]:
    started, _ = start_and_expand(
        session, world["org"], world["inviter"], crm_ids, user_type_id=world["type"].id
    )
    return reports.bulk_run_report(session, started.run_id)


def test_a_paid_type_without_licences_invites_nobody(session: Session) -> None:
    world = paid_world(session, licences=None, records=2)
    report = invite(session, world, ["v0", "v1"])
    assert report["failed_by_reason"] == {"licence_limit": 2}


def test_invites_stop_at_the_licences_in_force(session: Session) -> None:
    world = paid_world(session, licences=3, records=5)
    report = invite(session, world, [f"v{n}" for n in range(5)])
    assert (report["queued"], report["failed_by_reason"]) == (3, {"licence_limit": 2})


def test_a_reduced_purchase_stops_new_invites_and_deactivated_users_free_licences(
    session: Session,
) -> None:
    world = paid_world(session, licences=3, records=5)
    invite(session, world, ["v0", "v1", "v2"])
    tomorrow = utcnow().date() + timedelta(days=1)
    purchases.record_purchase(session, world["org"].id, world["type"].id, 2, tomorrow)
    session.commit()
    # Today the three licences still hold; the reduction counts from tomorrow.
    assert invite(session, world, ["v3"])["failed_by_reason"] == {"licence_limit": 1}
    user = session.scalars(select(PortalUser).order_by(PortalUser.id)).first()
    assert user is not None
    user.status = PortalUserStatus.DEACTIVATED
    session.commit()
    assert invite(session, world, ["v4"])["failed_by_reason"] == {}


def test_activation_cannot_exceed_the_licences(session: Session) -> None:
    world = paid_world(session, licences=2, records=3)
    invite(session, world, ["v0", "v1"])
    users = session.scalars(select(PortalUser).order_by(PortalUser.id)).all()
    for user in users:
        user.status = PortalUserStatus.DEACTIVATED
    session.commit()
    invite(session, world, ["v2"])  # the freed licences go to a new user
    started = user_actions.start_user_action(
        session,
        org_id=world["org"].id,
        user_type_id=world["type"].id,
        actor_id=world["inviter"].id,
        action=BulkAction.ACTIVATE,
        user_filter=UserFilter.DEACTIVATED,
    )
    session.commit()
    user_actions.run_chunk(session, started.chunk_ids[0])
    session.commit()
    report = reports.bulk_run_report(session, started.run_id)
    assert (report["sent"], report["failed"]) == (1, 1)
    assert report["refused_users"][0]["code"] == RefusalCode.LICENCE_LIMIT


def test_concurrent_bulk_runs_never_overshoot_on_postgres(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        world = paid_world(session, licences=10, records=16)
        runs = [
            bulk.start_bulk_run(
                session,
                org_id=world["org"].id,
                user_type_id=world["type"].id,
                inviter_id=world["inviter"].id,
                crm_ids=[f"v{n}" for n in range(half, 16, 2)],
            )
            for half in (0, 1)
        ]
        session.commit()

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def expand(chunk_id: int) -> None:
        try:
            with factory() as own:
                barrier.wait()
                bulk.expand_chunk(own, chunk_id)
                own.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=expand, args=(run.chunk_ids[0],)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with factory() as session:
        queued = session.scalar(
            select(func.count()).where(Invitation.status == InvitationStatus.QUEUED)
        )
        refused = session.scalar(
            select(func.count()).where(Invitation.failure_code == "licence_limit")
        )
        assert (queued, refused) == (10, 6)
