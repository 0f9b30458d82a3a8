"""The log of scheduled job firings (``ScheduledRun``): one row per firing of a job.

The scheduler writes a row when it fires a job and finishes it with the result
(``enqueued`` or the error); the ops page reads the last run of each job, and the
scheduler's catch-up reads the last successful one to find a missed slot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import ScheduledRun, utcnow

ENQUEUED = "enqueued"


def start_run(session: Session, job: str, started_at: datetime | None = None) -> ScheduledRun:
    """Add (and flush) the row of one firing of ``job``; the caller commits."""
    run = ScheduledRun(job=job, started_at=started_at or utcnow())
    session.add(run)
    session.flush()
    return run


def finish_run(
    session: Session, run_id: int, result: str, finished_at: datetime | None = None
) -> None:
    """Record how firing ``run_id`` ended: ``enqueued``, or the error's text."""
    run = session.get(ScheduledRun, run_id)
    if run is None:
        return
    run.finished_at = finished_at or utcnow()
    run.result = result[:2000]
    session.flush()


def last_successful_run(session: Session, job: str) -> ScheduledRun | None:
    """The latest firing of ``job`` that enqueued its actor, or None."""
    return session.scalars(
        select(ScheduledRun)
        .where(ScheduledRun.job == job, ScheduledRun.result == ENQUEUED)
        .order_by(ScheduledRun.started_at.desc(), ScheduledRun.id.desc())
        .limit(1)
    ).first()


def last_runs(session: Session) -> dict[str, ScheduledRun]:
    """The latest firing of every job that has one, by job name (for the ops page)."""
    latest = (
        select(ScheduledRun.job, func.max(ScheduledRun.id).label("id"))
        .group_by(ScheduledRun.job)
        .subquery()
    )
    rows = session.scalars(select(ScheduledRun).join(latest, ScheduledRun.id == latest.c.id))
    return {run.job: run for run in rows}
