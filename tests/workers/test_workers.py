"""The actors through a real Dramatiq worker on the Redis broker, against PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    BulkRun,
    Invitation,
    Org,
    SmsTemplateKind,
    make_session_factory,
)
from portalflow.pipelines.delivery import credits
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.ops import reports
from portalflow.workers import actors, enqueue

from ..conftest import wait_for_run
from ..factories import (
    approve_sms_template,
    client_portal,
    make_inviter,
    make_org,
    make_record,
    make_sms_org,
)

QUEUE = actors.INVITATIONS_QUEUE


@pytest.fixture
def world(pg_engine: Engine) -> dict[str, Any]:
    with make_session_factory(pg_engine)() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        for n in range(30):
            make_record(session, org, f"w{n}")
        make_record(session, org, "binned", in_recycle_bin=True)
        session.commit()
        return {
            "org_id": org.id,
            "user_type_id": client_portal(session, org).id,
            "inviter_id": inviter.id,
        }


def start_run(session: Session, world: dict[str, Any], crm_ids: list[str], chunk: int) -> Any:
    started = bulk.start_bulk_run(
        session,
        org_id=world["org_id"],
        user_type_id=world["user_type_id"],
        inviter_id=world["inviter_id"],
        crm_ids=crm_ids,
        chunk_size=chunk,
    )
    session.commit()
    return started


def test_bulk_invite_through_redis_worker(
    worker: Worker, world: dict[str, Any], pg_engine: Engine, outbox_dir: Path
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        ids = [f"w{n}" for n in range(30)] + ["binned", "nobody"]
        started = start_run(session, world, ids, chunk=7)
    assert enqueue.enqueue_chunks(started.chunk_ids) == 5

    wait_for_run(factory, started.run_id)
    with factory() as session:
        report = reports.bulk_run_report(session, started.run_id)
    assert (report["sent"], report["failed"], report["queued"]) == (30, 2, 0)
    assert report["failed_by_reason"] == {"in_recycle_bin": 1, "record_missing": 1}
    assert len(list(outbox_dir.glob("*.eml"))) == 30


def test_redelivered_messages_send_once(
    worker: Worker,
    redis_broker: RedisBroker,
    world: dict[str, Any],
    pg_engine: Engine,
    outbox_dir: Path,
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        started = start_run(session, world, [f"w{n}" for n in range(10)], chunk=10)
    # Each chunk message three times, and every invitation's dispatch message twice more.
    for _ in range(3):
        enqueue.enqueue_chunks(started.chunk_ids)
    redis_broker.join(QUEUE, timeout=30_000)
    with factory() as session:
        invitation_ids = list(session.scalars(select(Invitation.id)))
    enqueue.enqueue_dispatch(invitation_ids * 2)
    redis_broker.join(QUEUE, timeout=30_000)

    wait_for_run(factory, started.run_id)
    redis_broker.join(QUEUE, timeout=30_000)  # the duplicates, too, have been handled
    assert len(list(outbox_dir.glob("*.eml"))) == 10
    with factory() as session:
        run = session.get_one(BulkRun, started.run_id)
        assert (run.sent, run.failed, run.queued) == (10, 0, 0)
        assert session.scalar(select(func.count()).select_from(Invitation)) == 10


def test_malformed_and_unknown_messages_write_nothing(
    worker: Worker,
    redis_broker: RedisBroker,
    world: dict[str, Any],
    pg_engine: Engine,
    outbox_dir: Path,
) -> None:
    for bad in ("abc", -1, None, 99_999):
        actors.bulk_invite.send(bad)
    actors.dispatch_invitation.send("1; DROP TABLE invitations")
    redis_broker.join(QUEUE, timeout=30_000)
    with make_session_factory(pg_engine)() as session:
        assert session.scalar(select(func.count()).select_from(Invitation)) == 0
        assert session.scalar(select(func.count()).select_from(BulkRun)) == 0
    assert list(outbox_dir.glob("*.eml")) == []
    # Not retried: each went straight to the dead-letter queue.
    dead = redis_broker.client.zcard(f"{redis_broker.namespace}:{QUEUE}.XQ")
    assert dead == 5


def test_sms_invitations_through_redis_worker(
    worker: Worker, pg_engine: Engine, worker_settings: Settings
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        org = make_sms_org(session)
        for kind in SmsTemplateKind:
            approve_sms_template(session, org, kind)
        agents = purchases.add_user_type_with_licences(
            session,
            org.id,
            name="Agents",
            module="Vendors",
            invitation_preference="phone",
            licences=1000,
        )
        inviter = make_inviter(session, org, modules=["Vendors"], email="ops@zylker.com")
        credits.add(session, org.id, 100)
        for n in range(6):
            make_record(session, org, f"v{n}", module="Vendors", phone=f"+91 98{n:08d}")
        session.commit()
        world = {"org_id": org.id, "user_type_id": agents.id, "inviter_id": inviter.id}
        started = start_run(session, world, [f"v{n}" for n in range(6)], chunk=4)
    enqueue.enqueue_chunks(started.chunk_ids)

    wait_for_run(factory, started.run_id)
    assert len(list(worker_settings.sms_outbox_dir.glob("*.json"))) == 6
    with factory() as session:
        assert session.get_one(Org, org.id).sms_credits == 94


def test_message_id_parsing() -> None:
    assert actors.message_id(5, "x") == 5
    for bad in (0, -3, True, "5", 5.0, None):
        with pytest.raises(actors.MalformedMessage, match="x must be a positive integer"):
            actors.message_id(bad, "x")
