"""Work left behind by a dead worker or a lost message is found from the rows and finished once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    BulkRun,
    BulkRunStatus,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    make_session_factory,
    utcnow,
)
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.ops import recovery
from portalflow.workers import recovery_actors, runtime

from ..conftest import wait_for
from ..factories import client_portal, make_inviter, make_org, make_record

CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://portal.test", max_attempts=3)


def run_with_queued(session: Session, n: int = 3) -> tuple[bulk.StartedRun, list[int]]:
    org = make_org(session)
    inviter = make_inviter(session, org)
    for i in range(n):
        make_record(session, org, f"r{i}")
    session.commit()
    started = bulk.start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=client_portal(session, org).id,
        inviter_id=inviter.id,
        crm_ids=[f"r{i}" for i in range(n)],
    )
    session.commit()
    ids = bulk.expand_chunk(session, started.chunk_ids[0])
    session.commit()
    return started, ids


def die_after_claim(session: Session, ids: list[int], minutes_ago: int, attempts: int = 1) -> None:
    """What a worker killed between its claim and its outcome leaves behind."""
    session.execute(
        update(Invitation)
        .where(Invitation.id.in_(ids))
        .values(
            status=InvitationStatus.SENDING,
            claim_token="dead-worker",
            claimed_at=utcnow() - timedelta(minutes=minutes_ago),
            attempts=attempts,
        )
    )
    session.commit()


def outbox(tmp_path: Path) -> Channels:
    settings = Settings(outbox_dir=tmp_path / "outbox")
    return Channels(lambda: build_email_channel(settings))


def test_an_expired_claim_is_sent_again_once(session: Session, tmp_path: Path) -> None:
    started, ids = run_with_queued(session)
    die_after_claim(session, ids, minutes_ago=30)
    found = recovery.recover(session, utcnow(), max_attempts=3)
    session.commit()
    # Rows of a bulk chunk go back with their chunk: one message sends them in batches.
    assert (found.released_claims, found.invitation_ids) == (3, [])
    assert found.chunk_ids == started.chunk_ids

    result = dispatch.dispatch(session, ids, channels=outbox(tmp_path), config=CONFIG)
    assert sorted(result.sent) == ids
    again = dispatch.dispatch(session, ids, channels=outbox(tmp_path), config=CONFIG)
    assert again.sent == []
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    run = session.get_one(BulkRun, started.run_id)
    session.refresh(run)
    assert (run.sent, run.failed, run.queued, run.status) == (3, 0, 0, BulkRunStatus.COMPLETED)


def test_an_expired_claim_with_a_receipt_is_completed_not_sent_again(
    session: Session, tmp_path: Path
) -> None:
    started, ids = run_with_queued(session)
    die_after_claim(session, ids, minutes_ago=30)
    # The provider took the first one and its receipt was committed; then the worker died.
    session.execute(
        update(Invitation)
        .where(Invitation.id == ids[0])
        .values(provider_message_id="<m1@zylker>", sent_at=utcnow() - timedelta(minutes=30))
    )
    session.commit()
    found = recovery.recover(session, utcnow(), max_attempts=3)
    session.commit()
    assert (found.completed, found.released_claims) == (ids[:1], 2)

    result = dispatch.dispatch(session, ids, channels=outbox(tmp_path), config=CONFIG)
    assert sorted(result.sent) == ids[1:]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    run = session.get_one(BulkRun, started.run_id)
    session.refresh(run)
    assert (run.sent, run.queued, run.status) == (3, 0, BulkRunStatus.COMPLETED)


def test_a_live_claim_is_left_alone(session: Session) -> None:
    _, ids = run_with_queued(session)
    die_after_claim(session, ids, minutes_ago=2)
    found = recovery.recover(session, utcnow(), max_attempts=3)
    assert found.released_claims == 0 and (found.invitation_ids, found.chunk_ids) == ([], [])
    statuses = set(session.scalars(select(Invitation.status)))
    assert statuses == {InvitationStatus.SENDING}


def test_an_expired_last_attempt_ends_as_technical_failure(session: Session) -> None:
    started, ids = run_with_queued(session, n=2)
    die_after_claim(session, ids[:1], minutes_ago=30, attempts=3)
    found = recovery.recover(session, utcnow() + timedelta(minutes=10), max_attempts=3)
    session.commit()
    assert found.exhausted == ids[:1]
    failed = session.get_one(Invitation, ids[0])
    session.refresh(failed)
    assert (failed.status, failed.failure_code) == (InvitationStatus.FAILED, "technical_failure")
    user = session.get_one(PortalUser, failed.portal_user_id)
    session.refresh(user)
    assert user.status == PortalUserStatus.REMOVED
    run = session.get_one(BulkRun, started.run_id)
    session.refresh(run)
    assert (run.failed, run.queued) == (1, 1)


def test_lost_messages_are_found_after_the_grace_period(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "r0")
    session.commit()
    started = bulk.start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=client_portal(session, org).id,
        inviter_id=inviter.id,
        crm_ids=["r0"],
    )
    session.commit()
    now = utcnow()
    assert recovery.lost_messages(session, now) == ([], [])
    later = now + timedelta(minutes=6)
    assert recovery.lost_messages(session, later) == ([], [(started.chunk_ids[0], "invite")])

    # Found once per grace period: the next pass leaves the replayed chunk alone.
    assert recovery.lost_messages(session, later) == ([], [])

    bulk.expand_chunk(session, started.chunk_ids[0])
    session.commit()
    even_later = later + timedelta(minutes=6)
    # Its rows were written but their send message was lost: the chunk comes back.
    assert recovery.lost_messages(session, even_later) == ([], [(started.chunk_ids[0], "invite")])


def test_provider_events_nobody_took_up_are_found(session: Session) -> None:
    from portalflow.models import ProviderEvent

    event = ProviderEvent(provider="twilio", dedupe_key="k1", payload={"MessageSid": "SM1"})
    session.add(event)
    session.commit()
    assert recovery.recover(session, utcnow(), max_attempts=3).event_ids == []
    later = utcnow() + timedelta(minutes=6)
    assert recovery.recover(session, later, max_attempts=3).event_ids == [event.id]


def test_recovery_through_the_redis_worker(
    worker: Any, pg_engine: Any, worker_settings: Settings, outbox_dir: Path
) -> None:
    runtime.configure(Settings(**{**worker_settings.__dict__, "replay_grace_seconds": 0}))
    factory = make_session_factory(pg_engine)
    with factory() as session:
        started, ids = run_with_queued(session, n=4)
        die_after_claim(session, ids[:2], minutes_ago=30)
    # Two rows claimed by a dead worker, two whose dispatch message was lost.
    recovery_actors.recover_stuck_work.send()

    def completed() -> bool:
        # The outcome is committed after the provider took the message: wait for the row.
        with factory() as session:
            return session.get_one(BulkRun, started.run_id).status == BulkRunStatus.COMPLETED

    wait_for(completed)
    with factory() as session:
        run = session.get_one(BulkRun, started.run_id)
        assert (run.sent, run.queued) == (4, 0)
    assert len(list(outbox_dir.glob("*.eml"))) == 4
