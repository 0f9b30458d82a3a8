"""Database side of the ops page: per flow throughput and failures, bulk runs' progress,
scheduled job runs.

A *flow* is one kind of work the workers carry: invitations (per channel), CRM events and
provider events. Throughput is what finished in the window; failures are counted by reason
(the invitation's failure code, the event's result code or detail).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    BulkRunStatus,
    CrmEvent,
    CrmEventStatus,
    Invitation,
    InvitationStatus,
    ProviderEvent,
    ProviderEventStatus,
    ScheduledRun,
    utcnow,
)

WINDOW = timedelta(hours=1)
RECENT_RUNS = 10


@dataclass
class FlowStats:
    flow: str
    done: int = 0
    failed: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRun:
    job: str
    started_at: datetime
    finished_at: datetime | None
    result: str | None


def _flow(flows: dict[str, FlowStats], name: str) -> FlowStats:
    return flows.setdefault(name, FlowStats(name))


def flow_stats(
    session: Session,
    *,
    window: timedelta = WINDOW,
    now: datetime | None = None,
    until: datetime | None = None,
) -> list[FlowStats]:
    """Per flow, what finished and what failed (by reason) in the last ``window``.

    With ``until``, the window is ``[until - window, until)`` instead (the sampler's minutes).
    """
    end = until or now or utcnow()
    since = end - window
    flows: dict[str, FlowStats] = {}
    for name in ("invitations:email", "invitations:sms", "crm-events", "provider-events"):
        _flow(flows, name)
    _count_invitations(session, flows, since, until)
    _count_crm_events(session, flows, since, until)
    _count_provider_events(session, flows, since, until)
    return list(flows.values())


def _failed(stats: FlowStats, reason: str | None, count: int) -> None:
    stats.failed += count
    reason = reason or "unknown"
    stats.failures_by_reason[reason] = stats.failures_by_reason.get(reason, 0) + count


def _count_invitations(
    session: Session, flows: dict[str, FlowStats], since: datetime, until: datetime | None
) -> None:
    sent = select(Invitation.channel, func.count()).where(
        Invitation.sent_at >= since, *_before(Invitation.sent_at, until)
    )
    for channel, count in session.execute(sent.group_by(Invitation.channel)):
        _flow(flows, f"invitations:{channel}").done += count
    failed = (
        select(Invitation.channel, Invitation.failure_code, func.count())
        .where(
            Invitation.status == InvitationStatus.FAILED,
            Invitation.updated_at >= since,
            *_before(Invitation.updated_at, until),
        )
        .group_by(Invitation.channel, Invitation.failure_code)
    )
    for channel, code, count in session.execute(failed):
        _failed(_flow(flows, f"invitations:{channel}"), code, count)


def _count_crm_events(
    session: Session, flows: dict[str, FlowStats], since: datetime, until: datetime | None
) -> None:
    crm = (
        select(CrmEvent.status, CrmEvent.result_code, func.count())
        .where(CrmEvent.processed_at >= since, *_before(CrmEvent.processed_at, until))
        .group_by(CrmEvent.status, CrmEvent.result_code)
    )
    stats = _flow(flows, "crm-events")
    for status, code, count in session.execute(crm):
        if status == CrmEventStatus.FAILED:
            _failed(stats, code, count)
        else:
            stats.done += count


def _count_provider_events(
    session: Session, flows: dict[str, FlowStats], since: datetime, until: datetime | None
) -> None:
    provider = (
        select(ProviderEvent.status, func.count())
        .where(ProviderEvent.processed_at >= since, *_before(ProviderEvent.processed_at, until))
        .group_by(ProviderEvent.status)
    )
    stats = _flow(flows, "provider-events")
    for status, count in session.execute(provider):
        if status == ProviderEventStatus.FAILED:
            _failed(stats, "unparsable", count)
        else:
            stats.done += count


def _before(column: Any, until: datetime | None) -> tuple[Any, ...]:
    return () if until is None else (column < until,)


@dataclass(frozen=True)
class RunProgress:
    """A bulk run's totals, and its pace while it runs."""

    id: int
    org_id: int
    action: str
    status: str
    requested: int
    queued: int
    sent: int
    failed: int
    created_at: datetime
    finished_at: datetime | None
    per_minute: float | None  # decided (sent or failed) per minute since it started
    eta_seconds: float | None  # at that pace, until every requested record is decided

    @property
    def decided(self) -> int:
        return self.sent + self.failed

    def percent(self, part: int) -> float:
        """``part`` as a percentage of ``requested`` (for the progress bar's segments)."""
        return 100.0 * part / self.requested if self.requested else 0.0


def _progress(run: BulkRun, now: datetime) -> RunProgress:
    decided = run.sent + run.failed
    per_minute = eta = None
    elapsed = ((run.finished_at or now) - run.created_at).total_seconds()
    if elapsed > 0 and decided:
        per_minute = decided * 60 / elapsed
        if run.finished_at is None:
            eta = max(run.requested - decided, 0) * 60 / per_minute
    return RunProgress(
        run.id,
        run.org_id,
        run.action.value,
        run.status.value,
        run.requested,
        run.queued,
        run.sent,
        run.failed,
        run.created_at,
        run.finished_at,
        per_minute,
        eta,
    )


def running_runs(session: Session, now: datetime | None = None) -> list[RunProgress]:
    """Every bulk run still running, oldest first, with its rate and ETA."""
    now = now or utcnow()
    runs = session.scalars(
        select(BulkRun).where(BulkRun.status == BulkRunStatus.RUNNING).order_by(BulkRun.id)
    )
    return [_progress(run, now) for run in runs]


def recent_runs(
    session: Session, limit: int = RECENT_RUNS, now: datetime | None = None
) -> list[RunProgress]:
    """The ``limit`` bulk runs finished last, newest first."""
    now = now or utcnow()
    runs = session.scalars(
        select(BulkRun)
        .where(BulkRun.status == BulkRunStatus.COMPLETED)
        .order_by(BulkRun.finished_at.desc(), BulkRun.id.desc())
        .limit(limit)
    )
    return [_progress(run, now) for run in runs]


def last_job_runs(session: Session) -> list[JobRun]:
    """The latest run of each scheduled job, by job name."""
    latest = (
        select(ScheduledRun.job, func.max(ScheduledRun.started_at).label("started"))
        .group_by(ScheduledRun.job)
        .subquery()
    )
    rows = session.execute(
        select(ScheduledRun)
        .join(
            latest,
            (ScheduledRun.job == latest.c.job) & (ScheduledRun.started_at == latest.c.started),
        )
        .order_by(ScheduledRun.job, ScheduledRun.id.desc())
    ).scalars()
    runs: dict[str, JobRun] = {}
    for run in rows:
        runs.setdefault(run.job, JobRun(run.job, run.started_at, run.finished_at, run.result))
    return list(runs.values())


def invitation_counts(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Invitations by status and by outcome class (all time)."""
    by_status = {
        str(status): count
        for status, count in session.execute(
            select(Invitation.status, func.count()).group_by(Invitation.status)
        )
    }
    by_outcome = {
        str(outcome): count
        for outcome, count in session.execute(
            select(Invitation.outcome_class, func.count())
            .where(Invitation.outcome_class.is_not(None))
            .group_by(Invitation.outcome_class)
        )
    }
    return by_status, by_outcome


def as_dict(flows: list[FlowStats], runs: list[JobRun]) -> dict[str, Any]:
    return {"flows": [asdict(f) for f in flows], "jobs": [asdict(r) for r in runs]}
