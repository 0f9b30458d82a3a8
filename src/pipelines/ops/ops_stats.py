"""Database side of the ops page: per flow throughput and failures, scheduled job runs.

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
    session: Session, *, window: timedelta = WINDOW, now: datetime | None = None
) -> list[FlowStats]:
    """Per flow, what finished and what failed (by reason) in the last ``window``."""
    since = (now or utcnow()) - window
    flows: dict[str, FlowStats] = {}
    for channel in ("email", "sms"):
        _flow(flows, f"invitations:{channel}")
    _flow(flows, "crm-events")
    _flow(flows, "provider-events")

    sent = select(Invitation.channel, func.count()).where(Invitation.sent_at >= since)
    for channel, count in session.execute(sent.group_by(Invitation.channel)):
        _flow(flows, f"invitations:{channel}").done += count
    failed = (
        select(Invitation.channel, Invitation.failure_code, func.count())
        .where(Invitation.status == InvitationStatus.FAILED, Invitation.updated_at >= since)
        .group_by(Invitation.channel, Invitation.failure_code)
    )
    for channel, code, count in session.execute(failed):
        stats = _flow(flows, f"invitations:{channel}")
        stats.failed += count
        reason = code or "unknown"
        stats.failures_by_reason[reason] = stats.failures_by_reason.get(reason, 0) + count

    crm = (
        select(CrmEvent.status, CrmEvent.result_code, func.count())
        .where(CrmEvent.processed_at >= since)
        .group_by(CrmEvent.status, CrmEvent.result_code)
    )
    for status, code, count in session.execute(crm):
        stats = _flow(flows, "crm-events")
        if status == CrmEventStatus.FAILED:
            stats.failed += count
            reason = code or "unknown"
            stats.failures_by_reason[reason] = stats.failures_by_reason.get(reason, 0) + count
        else:
            stats.done += count

    provider = (
        select(ProviderEvent.status, func.count())
        .where(ProviderEvent.processed_at >= since)
        .group_by(ProviderEvent.status)
    )
    for status, count in session.execute(provider):
        stats = _flow(flows, "provider-events")
        if status == ProviderEventStatus.FAILED:
            stats.failed += count
            stats.failures_by_reason["unparsable"] = (
                stats.failures_by_reason.get("unparsable", 0) + count
            )
        else:
            stats.done += count
    return list(flows.values())


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
