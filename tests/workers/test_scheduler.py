"""The scheduler: one enqueue per slot across schedulers, missed slots caught up, retention."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import ProviderEvent, ProviderEventStatus, ScheduledRun
from portalflow.pipelines.ops import retention, schedule_log
from portalflow.workers import scheduler as sched

from ..cli_runner import run

TODAY_3AM = datetime(2024, 5, 10, 3, 0, tzinfo=UTC)
SETTINGS = Settings(reconcile_hour_utc=2)


def job(name: str) -> sched.ScheduledJob:
    return next(j for j in sched.default_jobs(SETTINGS) if j.name == name)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self._mutex = threading.Lock()

    def __call__(self, job: sched.ScheduledJob) -> None:
        with self._mutex:
            self.sent.append(job.name)


def local_scheduler(
    session_factory: sessionmaker[Session], *names: str, enqueue: Recorder
) -> sched.Scheduler:
    return sched.Scheduler(
        session_factory,
        sched.LocalSlotLock(60_000),
        [job(name) for name in names],
        enqueue=enqueue,
    )


def runs(session_factory: sessionmaker[Session], name: str) -> list[ScheduledRun]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(ScheduledRun).where(ScheduledRun.job == name).order_by(ScheduledRun.id)
            )
        )


def record_run(
    session_factory: sessionmaker[Session], name: str, at: datetime, result: str = "enqueued"
) -> None:
    with session_factory() as session:
        run_id = schedule_log.start_run(session, name, at).id
        schedule_log.finish_run(session, run_id, result, at)
        session.commit()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"portalflow-test-scheduler-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"{prefix}*")
    if keys:
        client.delete(*keys)
    client.close()


def redis_lock(redis_url: str, prefix: str) -> sched.RedisSlotLock:
    return sched.RedisSlotLock(redis.Redis.from_url(redis_url), 60_000, prefix=prefix)


def test_latest_slot_is_the_last_fire_time_at_or_before_now() -> None:
    assert sched.latest_slot(job("reconcile_licences"), TODAY_3AM) == TODAY_3AM.replace(hour=2)
    assert sched.latest_slot(job("expire_invitations"), TODAY_3AM) == TODAY_3AM
    at = TODAY_3AM + timedelta(minutes=7, seconds=30)
    assert sched.latest_slot(job("recover_stuck_work"), at) == TODAY_3AM + timedelta(minutes=5)
    assert sched.latest_slot(job("retention"), TODAY_3AM) == TODAY_3AM.replace(
        day=9, hour=3, minute=30
    )


def test_two_schedulers_fire_one_slot_once(
    redis_url: str, redis_prefix: str, session_factory: sessionmaker[Session]
) -> None:
    recorder = Recorder()
    schedulers = [
        sched.Scheduler(
            session_factory,
            redis_lock(redis_url, redis_prefix),
            sched.default_jobs(SETTINGS),
            enqueue=recorder,
        )
        for _ in range(2)
    ]
    now = TODAY_3AM.replace(hour=2, second=1)
    barrier = threading.Barrier(len(schedulers))
    won: list[bool] = []

    def fire(scheduler: sched.Scheduler) -> None:
        barrier.wait()
        won.append(scheduler.fire("reconcile_licences", now))

    threads = [threading.Thread(target=fire, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(won) == [False, True]
    assert recorder.sent == ["reconcile_licences"]
    [logged] = runs(session_factory, "reconcile_licences")
    assert logged.result == "enqueued" and logged.finished_at is not None
    # The next night is a new slot.
    assert schedulers[1].fire("reconcile_licences", now + timedelta(days=1))
    assert recorder.sent == ["reconcile_licences"] * 2


def test_two_schedulers_enqueue_one_message_on_the_redis_broker(
    redis_url: str,
    redis_prefix: str,
    redis_broker: RedisBroker,
    session_factory: sessionmaker[Session],
) -> None:
    schedulers = [
        sched.Scheduler(
            session_factory, redis_lock(redis_url, redis_prefix), sched.default_jobs(SETTINGS)
        )
        for _ in range(2)
    ]
    for scheduler in schedulers:
        scheduler.fire("expire_invitations", TODAY_3AM)
    queue = f"{redis_broker.namespace}:maintenance.msgs"
    assert redis_broker.client.hlen(queue) == 1


def test_a_failed_enqueue_frees_the_slot_for_another_try(
    session_factory: sessionmaker[Session],
) -> None:
    def broken(job: sched.ScheduledJob) -> None:
        raise ConnectionError("broker down")

    failing = sched.Scheduler(
        session_factory, sched.LocalSlotLock(60_000), [job("retention")], enqueue=broken
    )
    assert not failing.fire("retention", TODAY_3AM)
    [logged] = runs(session_factory, "retention")
    assert logged.result == "error: broker down"
    assert failing.missed(TODAY_3AM) == ["retention"]


def test_a_missed_nightly_run_is_caught_up_once(session_factory: sessionmaker[Session]) -> None:
    record_run(session_factory, "reconcile_licences", TODAY_3AM - timedelta(days=2, hours=1))
    recorder = Recorder()
    scheduler = local_scheduler(session_factory, "reconcile_licences", enqueue=recorder)

    assert scheduler.catch_up(TODAY_3AM) == ["reconcile_licences"]
    assert recorder.sent == ["reconcile_licences"]  # two missed nights, one run
    assert scheduler.catch_up(TODAY_3AM + timedelta(minutes=5)) == []
    assert recorder.sent == ["reconcile_licences"]
    assert len(runs(session_factory, "reconcile_licences")) == 2


def test_nothing_missed_fires_nothing(session_factory: sessionmaker[Session]) -> None:
    record_run(session_factory, "reconcile_licences", TODAY_3AM.replace(hour=2, second=2))
    record_run(session_factory, "expire_invitations", TODAY_3AM + timedelta(seconds=1))
    recorder = Recorder()
    scheduler = local_scheduler(
        session_factory, "reconcile_licences", "expire_invitations", enqueue=recorder
    )
    assert scheduler.catch_up(TODAY_3AM + timedelta(minutes=30)) == []
    assert recorder.sent == []


def test_a_failed_run_does_not_count_as_done(session_factory: sessionmaker[Session]) -> None:
    record_run(session_factory, "reconcile_licences", TODAY_3AM.replace(hour=2), "error: down")
    recorder = Recorder()
    scheduler = local_scheduler(session_factory, "reconcile_licences", enqueue=recorder)
    assert scheduler.catch_up(TODAY_3AM) == ["reconcile_licences"]


def test_last_runs_gives_each_jobs_latest_firing(session_factory: sessionmaker[Session]) -> None:
    record_run(session_factory, "retention", TODAY_3AM - timedelta(days=1))
    record_run(session_factory, "retention", TODAY_3AM, "error: down")
    record_run(session_factory, "expire_invitations", TODAY_3AM)
    with session_factory() as session:
        latest = schedule_log.last_runs(session)
    assert {name: run.result for name, run in latest.items()} == {
        "retention": "error: down",
        "expire_invitations": "enqueued",
    }


def test_retention_deletes_only_old_handled_events(session: Session) -> None:
    cutoff = TODAY_3AM - timedelta(days=30)
    old = cutoff - timedelta(days=1)
    kept_statuses = [ProviderEventStatus.RECEIVED, ProviderEventStatus.FAILED]
    for n, status in enumerate([*ProviderEventStatus, ProviderEventStatus.PROCESSED]):
        session.add(
            ProviderEvent(
                provider="ses", dedupe_key=f"old-{n}", payload={}, status=status, received_at=old
            )
        )
    session.add(
        ProviderEvent(
            provider="ses",
            dedupe_key="new",
            payload={},
            status=ProviderEventStatus.PROCESSED,
            received_at=cutoff + timedelta(hours=1),
        )
    )
    session.commit()

    assert retention.delete_old_provider_events(session, cutoff, batch=1) == 3
    left = session.execute(select(ProviderEvent.dedupe_key, ProviderEvent.status)).all()
    assert sorted(status for key, status in left if key != "new") == sorted(kept_statuses)
    assert "new" in {key for key, _ in left}
    assert retention.delete_old_provider_events(session, cutoff) == 0
    assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 3


def test_scheduler_once_catches_up_and_exits(cli_env: object) -> None:
    code, output = run("db", "upgrade")
    assert code == 0, output
    code, output = run("scheduler", "--once")
    assert code == 0, output
    assert "fired 5 missed job(s)" in output
    code, output = run("scheduler", "--once")
    assert code == 0, output
    assert "fired 0 missed job(s)" in output
