"""``portalflow healthcheck``: exit 0 when this container's portalflow process is healthy."""

from __future__ import annotations

import enum
import urllib.request
from pathlib import Path
from typing import Annotated

import redis
import typer

from portalflow.models import utcnow
from portalflow.workers import liveness
from portalflow.workers.scheduler import default_jobs

from .common import console, fail, open_session, settings

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
WEB_URL = "http://127.0.0.1:8000/healthz"
WEB_TIMEOUT_SECONDS = 3.0


class Role(enum.StrEnum):
    AUTO = "auto"
    WORKER = "worker"
    SCHEDULER = "scheduler"
    WEB = "web"


def healthcheck(
    role: Annotated[Role, typer.Argument(help="What to check; auto: what --pid runs.")] = Role.AUTO,
    pid: Annotated[
        int, typer.Option(help="The checked process (a container's main process is 1).")
    ] = 1,
    url: Annotated[str, typer.Option(help="The web app's health URL.")] = WEB_URL,
) -> None:
    """Check one portalflow process for a container's HEALTHCHECK; exit 1 with the reason.

    worker: the `dramatiq` parent `--pid` lives and each of its worker processes lives and
    beats in Redis; scheduler: recover_stuck_work was enqueued within two of its periods and
    the lock's Redis answers; web: `GET /healthz` answers 200. auto picks one from `--pid`'s
    command line (nothing to check for others, such as `db upgrade`).
    Example: `portalflow healthcheck worker --pid $(cat var/dramatiq.pid)`
    """
    if role is Role.AUTO:
        role = _role_of(pid)
    if role is Role.AUTO:
        console.print("nothing to check")
        return
    checks = {Role.WORKER: _worker, Role.SCHEDULER: _scheduler, Role.WEB: lambda _: _web(url)}
    problems = checks[role](pid)
    if problems:
        fail(f"{role}: " + "; ".join(problems), code=1)
    console.print(f"{role}: healthy")


def _redis(broker_url: str) -> redis.Redis | None:
    return redis.Redis.from_url(broker_url) if broker_url.startswith(REDIS_SCHEMES) else None


def _worker(pid: int) -> list[str]:
    return liveness.worker_problems(pid, _redis(settings().broker_url))


HEARTBEAT_JOB = "recover_stuck_work"


def _scheduler(pid: int) -> list[str]:
    config = settings()
    # Recovery is the job everything else leans on (lost messages, lapsed claims).
    [job] = [job for job in default_jobs(config) if job.name == HEARTBEAT_JOB]
    try:
        with open_session(config) as session:
            return liveness.scheduler_problems(
                session, job.name, job.period.total_seconds(), utcnow(), _redis(config.broker_url)
            )
    except Exception as exc:  # any database trouble is the answer, not a traceback
        return [f"cannot read the schedule log: {type(exc).__name__}"]


def _web(url: str) -> list[str]:
    try:
        with urllib.request.urlopen(url, timeout=WEB_TIMEOUT_SECONDS) as response:
            return [] if response.status == 200 else [f"{url} answered {response.status}"]
    except OSError as exc:
        return [f"{url}: {exc}"]


def _role_of(pid: int) -> Role:
    """The role of process ``pid`` from its command line (AUTO: none of ours)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return Role.AUTO
    if "portalflow.workers" in argv or "worker" in argv:
        return Role.WORKER
    if "scheduler" in argv:
        return Role.SCHEDULER
    if "serve" in argv:
        return Role.WEB
    return Role.AUTO
