"""``portalflow scheduler``: cron triggers that enqueue the maintenance actors.

The scheduler does no work itself: each firing only ``.send()``s an actor, under a lock
per (job, scheduled slot) so that two schedulers running side by side enqueue it once
(``SET key value NX PX`` on the Redis of PORTALFLOW_BROKER_URL; with no Redis an
in-process lock, which only protects one process). Each firing is logged as a
``ScheduledRun``; on start, a job whose last slot passed without a successful firing
(the scheduler was down at 02:00) is fired once now, however many slots were missed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import dramatiq
import redis
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from dramatiq import Actor
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import session_scope, utcnow
from portalflow.pipelines.ops import latency, retention, sampler, schedule_log

from . import queue_stats, runtime
from .actors import MAINTENANCE_QUEUE, MINUTE_MS
from .broker import register
from .licence_actors import reconcile_licences
from .lifecycle_actors import expire_invitations_sweep
from .recovery_actors import recover_stuck_work
from .webhook_actors import replay_webhooks

log = logging.getLogger(__name__)

LOCK_PREFIX = "portalflow:scheduler"
# A firing this late (the process was busy or suspended) still runs; later, it is coalesced.
MISFIRE_GRACE_SECONDS = 15 * 60
RETENTION_HOUR_UTC = 3
RETENTION_MINUTE = 30


@register
@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=30 * MINUTE_MS)
def purge_old_provider_events() -> None:
    """Delete processed and ignored provider events older than PORTALFLOW_RETENTION_DAYS,
    and the admin API's idempotency keys past their 24 hours."""
    current = runtime.current()
    older_than = utcnow() - timedelta(days=current.settings.retention_days)
    with current.session() as session:
        deleted = retention.delete_old_provider_events(session, older_than)
        keys = retention.delete_old_idempotency_keys(session)
    if deleted or keys:
        log.info(
            "deleted %d provider events received before %s and %d expired idempotency keys",
            deleted,
            older_than,
            keys,
        )


OPS_SAMPLE_JOB = "ops_sample"


@register
@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=2 * MINUTE_MS)
def sample_ops_metrics() -> None:
    """Write the ops page's per-minute samples (and drop those past their retention)."""
    current = runtime.current()
    broker = dramatiq.get_broker()
    queues = timings = None
    if isinstance(broker, RedisBroker):
        queues, timings = broker_samples(broker)
    with current.session() as session:
        sampler.take(session, queues=queues, timings=timings, prune_job=OPS_SAMPLE_JOB)


def broker_samples(
    broker: RedisBroker,
) -> tuple[list[sampler.QueueSample] | None, sampler.Timings]:
    """What Redis holds now per queue (None if it cannot say), and a reader of timings."""
    client, namespace = broker.client, broker.namespace
    try:
        snap = queue_stats.snapshot(client, namespace)
        queues = [
            sampler.QueueSample(q.queue, q.ready + q.delayed + q.in_progress, q.dead)
            for q in snap.queues
        ]
    except redis.RedisError:
        queues = None  # a gap in the depth chart, not a zero

    def timings(minute: datetime) -> dict[str, list[float]]:
        try:
            return latency.read_minute(client, namespace, minute, sampler.CHANNELS)
        except redis.RedisError:
            return {}

    return queues, timings


@dataclass(frozen=True)
class ScheduledJob:
    """One cron job: a name (the ``ScheduledRun.job``), when it fires, what it enqueues.

    ``period`` is at least the longest gap between two fire times; it bounds the search
    for the latest slot. ``catch_up=False``: a missed slot is not fired on start (the job
    makes up for missed runs itself, and its next slot is at most a period away).
    """

    name: str
    trigger: CronTrigger
    actor: Actor
    period: timedelta
    catch_up: bool = True


def default_jobs(settings: Settings) -> list[ScheduledJob]:
    """The maintenance jobs: expiry hourly, licences nightly, recovery, retention daily,
    the ops sampler every minute."""
    return [
        ScheduledJob(
            "expire_invitations",
            CronTrigger(minute=0, timezone=UTC),
            expire_invitations_sweep,
            timedelta(hours=1),
        ),
        ScheduledJob(
            "reconcile_licences",
            CronTrigger(hour=settings.reconcile_hour_utc, minute=0, timezone=UTC),
            reconcile_licences,
            timedelta(days=1),
        ),
        ScheduledJob(
            "recover_stuck_work",
            CronTrigger(minute="*/5", timezone=UTC),
            recover_stuck_work,
            timedelta(minutes=5),
        ),
        ScheduledJob(
            "replay_webhooks",
            CronTrigger(minute="*", timezone=UTC),
            replay_webhooks,
            timedelta(minutes=1),
        ),
        ScheduledJob(
            "retention",
            CronTrigger(hour=RETENTION_HOUR_UTC, minute=RETENTION_MINUTE, timezone=UTC),
            purge_old_provider_events,
            timedelta(days=1),
        ),
        # Every minute. Its period is given as 5 minutes (allowed: at least the longest gap)
        # so that the scheduler's healthcheck keeps watching recover_stuck_work, listed
        # first; no catch-up on start, as the sampler fills the minutes it missed itself.
        ScheduledJob(
            OPS_SAMPLE_JOB,
            CronTrigger(minute="*", timezone=UTC),
            sample_ops_metrics,
            timedelta(minutes=5),
            catch_up=False,
        ),
    ]


def latest_slot(job: ScheduledJob, now: datetime) -> datetime | None:
    """The job's latest fire time at or before ``now`` (within one period), or None."""
    slot = None
    candidate = job.trigger.get_next_fire_time(None, now - job.period - timedelta(minutes=1))
    while candidate is not None and candidate <= now:
        slot = candidate
        candidate = job.trigger.get_next_fire_time(candidate, candidate + timedelta(seconds=1))
    return slot


class SlotLock(Protocol):
    def acquire(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...


class RedisSlotLock:
    """``SET key token NX PX ttl``: the first scheduler to ask for a slot gets it."""

    def __init__(self, client: redis.Redis, ttl_ms: int, prefix: str = LOCK_PREFIX) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.prefix = prefix
        self.token = uuid.uuid4().hex

    def acquire(self, key: str) -> bool:
        return bool(self.client.set(f"{self.prefix}:{key}", self.token, nx=True, px=self.ttl_ms))

    def release(self, key: str) -> None:
        full = f"{self.prefix}:{key}"
        if self.client.get(full) == self.token.encode():
            self.client.delete(full)


class LocalSlotLock:
    """The same lock inside one process only (no Redis): protects threads, not machines."""

    def __init__(self, ttl_ms: int) -> None:
        self.ttl = ttl_ms / 1000
        self._held: dict[str, float] = {}
        self._mutex = threading.Lock()

    def acquire(self, key: str) -> bool:
        now = time.monotonic()
        with self._mutex:
            if self._held.get(key, 0.0) > now:
                return False
            self._held[key] = now + self.ttl
            return True

    def release(self, key: str) -> None:
        with self._mutex:
            self._held.pop(key, None)


def make_lock(settings: Settings) -> SlotLock:
    """A Redis lock on PORTALFLOW_BROKER_URL's Redis, or (with a warning) a local one."""
    ttl_ms = settings.scheduler_lock_seconds * 1000
    url = settings.broker_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisSlotLock(redis.Redis.from_url(url), ttl_ms)
    log.warning(
        "PORTALFLOW_BROKER_URL is not a Redis URL: the scheduler lock is in-process only, "
        "so run a single scheduler"
    )
    return LocalSlotLock(ttl_ms)


def _send(job: ScheduledJob) -> None:
    job.actor.send()


class Scheduler:
    """Fires the jobs: lock the slot, log a ScheduledRun, enqueue the actor."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        lock: SlotLock,
        jobs: Sequence[ScheduledJob],
        *,
        enqueue: Callable[[ScheduledJob], object] = _send,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.lock = lock
        self.jobs = {job.name: job for job in jobs}
        self.enqueue = enqueue
        self.clock = clock

    def fire(self, name: str, now: datetime | None = None) -> bool:
        """Fire ``name``'s latest slot; True when this scheduler enqueued it."""
        job = self.jobs[name]
        now = now or self.clock()
        slot = latest_slot(job, now) or now
        key = f"{job.name}:{slot.isoformat()}"
        if not self.lock.acquire(key):
            log.debug("%s at %s was fired by another scheduler", job.name, slot)
            return False
        with session_scope(self.session_factory) as session:
            run_id = schedule_log.start_run(session, job.name, now).id
        try:
            self.enqueue(job)
        except Exception as exc:
            log.exception("could not enqueue %s", job.name)
            self.lock.release(key)  # let another scheduler (or the next start) try the slot
            self._finish(run_id, f"error: {exc}")
            return False
        self._finish(run_id, schedule_log.ENQUEUED)
        log.info("enqueued %s (slot %s)", job.name, slot)
        return True

    def missed(self, now: datetime | None = None) -> list[str]:
        """Jobs whose latest slot passed with no successful firing since (or ever)."""
        now = now or self.clock()
        names = []
        with session_scope(self.session_factory) as session:
            for job in self.jobs.values():
                slot = latest_slot(job, now) if job.catch_up else None
                if slot is None:
                    continue
                last = schedule_log.last_successful_run(session, job.name)
                if last is None or last.started_at < slot:
                    names.append(job.name)
        return names

    def catch_up(self, now: datetime | None = None) -> list[str]:
        """Fire each missed job once now (many missed slots: one run); the jobs fired."""
        now = now or self.clock()
        return [name for name in self.missed(now) if self.fire(name, now)]

    def add_to(self, scheduler: BaseScheduler) -> None:
        """Add every job to an APScheduler scheduler (coalesced, with a misfire grace)."""
        for job in self.jobs.values():
            scheduler.add_job(
                self.fire,
                trigger=job.trigger,
                args=(job.name,),
                id=job.name,
                name=job.name,
                coalesce=True,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
                max_instances=1,
                replace_existing=True,
            )

    def _finish(self, run_id: int, result: str) -> None:
        with session_scope(self.session_factory) as session:
            schedule_log.finish_run(session, run_id, result, self.clock())


def from_settings(settings: Settings) -> Scheduler:
    """A scheduler on the configured database and lock, enqueueing the real actors."""
    current = runtime.configure(settings)
    return Scheduler(current.session_factory, make_lock(settings), default_jobs(settings))


def run_forever(scheduler: Scheduler) -> None:
    """Catch up, then fire on schedule until interrupted (Ctrl-C or SIGTERM)."""
    scheduler.catch_up()
    blocking = BlockingScheduler(timezone=UTC)
    scheduler.add_to(blocking)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: blocking.shutdown(wait=False))
    try:
        blocking.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if blocking.running:
            blocking.shutdown(wait=False)
