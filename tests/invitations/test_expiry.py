"""The 7-day expiry sweep: boundary, batches, idempotence, concurrency, actor and CLI."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import (
    AcceptanceProblem,
    EmailKind,
    Invitation,
    InvitationStatus,
    Org,
    make_engine,
    make_session_factory,
)
from portalflow.pipelines.invitations import acceptance, expiry, tokens
from portalflow.workers import lifecycle_actors, runtime

from ..cli_runner import run
from ..factories import client_portal, make_org
from .test_acceptance import PASSWORD, invite, make_world, refused

SENT_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SEVEN_DAYS = tokens.INVITATION_LIFETIME
SECOND = timedelta(seconds=1)


def add_invitations(
    session: Session,
    org: Org,
    expires_at: list[datetime],
    status: InvitationStatus = InvitationStatus.SENT,
) -> list[int]:
    """Sent invitation rows, one per expiry time (in one INSERT); their ids."""
    user_type_id = client_portal(session, org).id
    start = session.scalar(select(func.count()).select_from(Invitation)) or 0
    rows = [
        {
            "org_id": org.id,
            "user_type_id": user_type_id,
            "crm_id": f"x{start + n}",
            "kind": EmailKind.ACCEPT_INVITATION,
            "status": status,
            "token_hash": tokens.new_token()[1],
            "sent_at": at - SEVEN_DAYS,
            "expires_at": at,
            "attempts": 1,
        }
        for n, at in enumerate(expires_at)
    ]
    ids = list(session.scalars(insert(Invitation).returning(Invitation.id), rows))
    session.commit()
    return ids


def invitations_of_a_new_org(
    factory: sessionmaker[Session], expires_at: list[datetime]
) -> list[int]:
    """A new org with sent invitations, one per expiry time, committed; their ids."""
    with factory() as session:
        org = make_org(session)
        session.commit()
        return add_invitations(session, org, expires_at)


def statuses(session: Session) -> dict[int, InvitationStatus]:
    session.expire_all()
    found = {
        row.id: row.status for row in session.execute(select(Invitation.id, Invitation.status))
    }
    session.commit()
    return found


def test_expired_exactly_at_seven_days(session: Session) -> None:
    org = make_org(session)
    deadline = SENT_AT + SEVEN_DAYS
    first, second = add_invitations(session, org, [deadline, deadline + 2 * SECOND])

    assert expiry.expire_invitations(session, deadline - SECOND) == expiry.ExpirySweep(0, 0)
    assert statuses(session) == {first: InvitationStatus.SENT, second: InvitationStatus.SENT}

    assert expiry.expire_invitations(session, deadline).expired == 1
    assert statuses(session) == {first: InvitationStatus.EXPIRED, second: InvitationStatus.SENT}

    # One second after the first deadline, still a second before the second one.
    assert expiry.expire_invitations(session, deadline + SECOND).expired == 0
    assert expiry.expire_invitations(session, deadline + 3 * SECOND).expired == 1
    assert set(statuses(session).values()) == {InvitationStatus.EXPIRED}


def test_batches_are_keyset_paginated_and_a_second_run_does_nothing(session: Session) -> None:
    org = make_org(session)
    now = SENT_AT + SEVEN_DAYS
    due = add_invitations(session, org, [now - SECOND * n for n in range(5)])
    future = add_invitations(session, org, [now + SECOND])
    accepted = add_invitations(session, org, [now - SECOND], status=InvitationStatus.ACCEPTED)
    queued = add_invitations(session, org, [now - SECOND], status=InvitationStatus.QUEUED)

    # One connection (on PostgreSQL more share out spans of time, each ending short).
    assert expiry.expire_invitations(session, now, batch_size=2, workers=1) == expiry.ExpirySweep(
        5, 3
    )
    after = statuses(session)
    assert {after[i] for i in due} == {InvitationStatus.EXPIRED}
    assert after[future[0]] == InvitationStatus.SENT
    assert after[accepted[0]] == InvitationStatus.ACCEPTED
    assert after[queued[0]] == InvitationStatus.QUEUED

    assert expiry.expire_invitations(session, now, batch_size=2, workers=1) == expiry.ExpirySweep(
        0, 0
    )
    assert statuses(session) == after
    # An exact multiple of the batch size ends with one empty look.
    add_invitations(session, org, [now, now])
    assert expiry.expire_invitations(session, now, batch_size=2, workers=1) == expiry.ExpirySweep(
        2, 1
    )


def test_an_expired_token_then_fails_with_expired(session: Session, tmp_path: Path) -> None:
    world = make_world(session, tmp_path / "o", records=2)
    by_id = invite(session, world, ["c0", "c1"])
    (first, first_token), (_second, second_token) = sorted(by_id.items())
    expires_at = session.get_one(Invitation, first).expires_at
    assert expires_at is not None
    session.commit()

    assert expiry.expire_invitations(session, expires_at + SECOND).expired == 2
    refused(
        session,
        AcceptanceProblem.EXPIRED,
        lambda: acceptance.accept_invitation(session, first_token, password=PASSWORD),
    )
    refused(
        session,
        AcceptanceProblem.EXPIRED,
        lambda: acceptance.accept_invitation(session, second_token, password=PASSWORD, now=SENT_AT),
    )


def test_two_sweeps_at_once_never_double_count(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    now = SENT_AT + SEVEN_DAYS
    ids = invitations_of_a_new_org(factory, [now - SECOND] * 3000)

    barrier = threading.Barrier(2)
    results: list[expiry.ExpirySweep] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            with factory() as own:
                barrier.wait()
                results.append(expiry.expire_invitations(own, now, batch_size=100))
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == 2, results
    assert sum(r.expired for r in results) == len(ids)
    with factory() as session:
        assert set(statuses(session).values()) == {InvitationStatus.EXPIRED}
        assert expiry.expire_invitations(session, now).expired == 0


def test_the_due_rows_are_split_between_connections(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    now = SENT_AT + SEVEN_DAYS
    with factory() as session:
        org = make_org(session)
        session.commit()
        # Many rows share an expiry time: a cut between ranges falls on one of them.
        due = add_invitations(session, org, [now - SECOND * (n // 7) for n in range(700)])
        [later] = add_invitations(session, org, [now + SECOND])

        swept = expiry.expire_invitations(session, now, batch_size=50, workers=3)

        assert swept.expired == len(due)
        # Spans of time shared out between three connections, in batches of 50 at most: at
        # most one short batch per span.
        spans = 3 * expiry.SLICES_PER_WORKER
        assert len(due) // 50 <= swept.batches <= len(due) // 50 + spans
        after = statuses(session)
        assert {after[i] for i in due} == {InvitationStatus.EXPIRED}
        assert after[later] == InvitationStatus.SENT
        assert expiry.expire_invitations(session, now, workers=3) == expiry.ExpirySweep(0, 0)


def test_workers_must_be_positive(session: Session) -> None:
    try:
        expiry.expire_invitations(session, SENT_AT, workers=0)
    except ValueError as exc:
        assert "workers" in str(exc)
    else:
        raise AssertionError("workers=0 was accepted")


def test_a_row_locked_elsewhere_is_skipped_not_waited_for(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    now = SENT_AT + SEVEN_DAYS
    locked, free = invitations_of_a_new_org(factory, [now, now])
    with factory() as holder, factory() as sweeper:
        holder.execute(select(Invitation.id).where(Invitation.id == locked).with_for_update())
        assert expiry.expire_invitations(sweeper, now) == expiry.ExpirySweep(1, 1)
        holder.rollback()
        assert expiry.expire_invitations(sweeper, now) == expiry.ExpirySweep(1, 1)
        assert set(statuses(sweeper)) == {locked, free}
        assert set(statuses(sweeper).values()) == {InvitationStatus.EXPIRED}


def test_the_actor_runs_the_sweep(session: Session) -> None:
    org = make_org(session)
    past = datetime.now(UTC) - SECOND
    [due] = add_invitations(session, org, [past])
    [later] = add_invitations(session, org, [past + 2 * SEVEN_DAYS])
    url = session.get_bind().url.render_as_string(hide_password=False)
    runtime.configure(Settings(database_url=url))
    try:
        lifecycle_actors.expire_invitations_sweep()
    finally:
        runtime.current().close()
    assert statuses(session) == {due: InvitationStatus.EXPIRED, later: InvitationStatus.SENT}
    assert lifecycle_actors.expire_invitations_sweep.queue_name == "maintenance"


def test_cli_sweep_expired(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    engine = make_engine(Settings(var_dir=cli_env).database_url)
    try:
        with make_session_factory(engine)() as session:
            org = make_org(session)
            session.commit()
            add_invitations(session, org, [datetime.now(UTC) - SECOND] * 3)
    finally:
        engine.dispose()

    code, out = run("sweep", "expired", "--batch-size", "2", "--json")
    assert code == 0, out
    assert json.loads(out) == {"expired": 3, "batches": 2}
    code, out = run("sweep", "expired")
    assert code == 0 and "expired 0 invitations" in out

    # A row written with an expiry long before the last sweep's mark: only a sweep of the
    # whole history finds it.
    engine = make_engine(Settings(var_dir=cli_env).database_url)
    try:
        with make_session_factory(engine)() as session:
            add_invitations(session, session.scalars(select(Org)).one(), [SENT_AT])
    finally:
        engine.dispose()
    assert json.loads(run("sweep", "expired", "--json")[1])["expired"] == 0
    assert json.loads(run("sweep", "expired", "--whole-history", "--json")[1])["expired"] == 1
    code, out = run("sweep", "expired", "--help")
    assert code == 0 and "--whole-history" in out


def test_a_sweep_starts_a_day_before_where_the_last_one_reached(session: Session) -> None:
    org = make_org(session)
    now = SENT_AT + SEVEN_DAYS
    [first] = add_invitations(session, org, [now - SEVEN_DAYS])
    assert expiry.expire_invitations(session, now).expired == 1  # no mark yet: from the start
    # Rows no real sweep could have left behind (each was due before the last sweep ran):
    # one within the look-back is still taken; one before it is past where sweeps look.
    [within] = add_invitations(session, org, [now - expiry.LOOK_BACK + SECOND])
    [before] = add_invitations(session, org, [now - expiry.LOOK_BACK - SECOND])
    [due_later] = add_invitations(session, org, [now + SECOND])

    assert expiry.expire_invitations(session, now + 2 * SECOND).expired == 2
    after = statuses(session)
    assert after[first] == after[within] == after[due_later] == InvitationStatus.EXPIRED
    assert after[before] == InvitationStatus.SENT
    assert expiry.expire_invitations(session, now, whole_history=True).expired == 1
    assert statuses(session)[before] == InvitationStatus.EXPIRED


def test_an_unfinished_sweep_leaves_the_mark_where_it_was(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = make_org(session)
    now = SENT_AT + SEVEN_DAYS
    assert expiry.expire_invitations(session, now - SEVEN_DAYS).expired == 0  # mark: 7 days ago
    add_invitations(session, org, [now - SEVEN_DAYS + SECOND * n for n in range(1, 4)])

    def interrupted(*args: object, **kwargs: object) -> expiry.ExpirySweep:
        raise ConnectionError("the database went away mid-sweep")

    with monkeypatch.context() as patch:
        patch.setattr(expiry, "_sweep", interrupted)
        with pytest.raises(ConnectionError):
            expiry.expire_invitations(session, now)
    session.rollback()
    # The mark did not move to ``now``: a later sweep still looks back from 7 days ago.
    assert expiry.expire_invitations(session, now + SEVEN_DAYS).expired == 3
