"""What the worker and scheduler healthchecks check: alive, and connected.

Each ``dramatiq`` worker process writes a small file once its worker has booted (its pid,
its parent's pid, its Redis broker id), and removes it when it stops. A worker group is
healthy when its parent lives, at least one of its processes booted, and every booted
process lives and has beaten in Redis (``<namespace>:__heartbeats__``, which Dramatiq's
Redis consumers update on every fetch) within Dramatiq's heartbeat timeout. The scheduler
is healthy when the most frequent job's last firing succeeded within two of its periods
(so the database took the log and the broker the message) and its lock's Redis answers.

``ConsumerRegistry`` tells consumers from producers for /ops: every broker that talks to
Redis heartbeats, so each worker (on a Redis broker) also writes who it is (host, pid,
queues, threads) into ``<namespace>:__consumers__`` when it boots, and deletes it when it
stops; /ops counts an entry live while its broker beats (``queue_stats.consumers``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from sqlalchemy.orm import Session

from portalflow.pipelines.ops import latency, schedule_log

from . import queue_stats

STATE_DIR = Path(tempfile.gettempdir()) / "portalflow-workers"


@dataclass(frozen=True)
class WorkerRecord:
    """One booted worker process, as its liveness file tells."""

    pid: int
    parent: int
    broker_id: str = ""
    namespace: str = ""
    heartbeat_timeout_ms: int = 0


class Liveness(Middleware):
    """Write this worker process's liveness file after boot; remove it on shutdown."""

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if multiprocessing.parent_process() is None:
            return  # a worker inside another program (tests, embedded): nothing to check
        record = WorkerRecord(os.getpid(), os.getppid())
        if isinstance(broker, RedisBroker):
            record = WorkerRecord(
                record.pid,
                record.parent,
                broker.broker_id,
                broker.namespace,
                broker.heartbeat_timeout,
            )
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        path = _path(record.pid)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(record.__dict__))
        partial.replace(path)  # a healthcheck never reads half a file

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        _path(os.getpid()).unlink(missing_ok=True)


class ConsumerRegistry(Middleware):
    """Register this worker's consumers in Redis after boot; unregister on shutdown."""

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        delayed = {dq_name(q) for q in broker.get_declared_queues()}
        queues = sorted(q for q in worker.consumers if q not in delayed)
        entry = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": queues,
            "threads": worker.worker_threads,
            "started_ms": int(time.time() * 1000),
        }
        key = f"{broker.namespace}:{queue_stats.CONSUMERS_KEY}"
        try:
            broker.client.hset(key, broker.broker_id, json.dumps(entry))
        except redis.RedisError:  # /ops misses one worker; the worker itself is fine
            return

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        key = f"{broker.namespace}:{queue_stats.CONSUMERS_KEY}"
        try:
            broker.client.hdel(key, broker.broker_id)
        except redis.RedisError:
            return


class LatencyFlush(Middleware):
    """After each message, push the provider call timings it recorded to Redis (/ops)."""

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if not isinstance(broker, RedisBroker):
            latency.drain()  # nobody reads them: do not let them pile up
            return
        try:
            latency.flush(broker.client, broker.namespace)
        except redis.RedisError:
            return  # one minute of the latency chart is missing a few calls


def records(parent: int, state_dir: Path = STATE_DIR) -> list[WorkerRecord]:
    """The liveness records of ``parent``'s worker processes."""
    return [record for record in _read_all(state_dir) if record.parent == parent]


def worker_problems(
    parent: int, client: redis.Redis | None, state_dir: Path = STATE_DIR
) -> list[str]:
    """Why the worker group under ``parent`` is unhealthy; empty when it is healthy."""
    if not alive(parent):
        return [f"no process {parent}"]
    booted = records(parent, state_dir)
    if not booted:
        return [f"no worker process of {parent} has booted"]
    problems = [f"worker process {r.pid} is gone" for r in booted if not alive(r.pid)]
    beating = [r for r in booted if r.broker_id]
    if client is None or not beating:
        return problems
    now_ms = int(time.time() * 1000)  # Dramatiq stamps heartbeats with the worker's clock
    try:
        for record in beating:
            beat = client.zscore(f"{record.namespace}:__heartbeats__", record.broker_id)
            if beat is None or now_ms - beat > record.heartbeat_timeout_ms:
                problems.append(f"worker process {record.pid} has not beaten in Redis")
    except redis.RedisError as exc:
        problems.append(f"cannot reach the broker's Redis: {type(exc).__name__}")
    return problems


def scheduler_problems(
    session: Session, job: str, period_seconds: float, now: datetime, client: redis.Redis | None
) -> list[str]:
    """Why the schedule is not being kept; empty when ``job`` fired lately and Redis answers."""
    problems = []
    last = schedule_log.last_successful_run(session, job)
    if last is None or (now - last.started_at).total_seconds() > 2 * period_seconds:
        when = "never" if last is None else f"last at {last.started_at.isoformat()}"
        problems.append(f"{job} has not been enqueued for two periods ({when})")
    if client is not None:
        try:
            client.ping()
        except redis.RedisError as exc:
            problems.append(f"cannot reach the lock's Redis: {type(exc).__name__}")
    return problems


def alive(pid: int) -> bool:
    """True when a process ``pid`` exists (and is not a zombie, on Linux)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: existence is all we can tell
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _path(pid: int) -> Path:
    return STATE_DIR / f"{pid}.json"


def _read_all(state_dir: Path) -> Iterator[WorkerRecord]:
    for path in state_dir.glob("*.json"):
        try:
            yield WorkerRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # removed meanwhile, or not ours
