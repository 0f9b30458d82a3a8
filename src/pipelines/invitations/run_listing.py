"""Finding bulk runs: an org's runs by user type, status and start time, newest first, by page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import BulkAction, BulkRun, BulkRunStatus, PortalUserType
from portalflow.pipelines.errors import InvalidInput

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class RunPage:
    """One page of runs, and how many match in all."""

    runs: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "limit": self.limit, "offset": self.offset, "runs": self.runs}


def list_bulk_runs(
    session: Session,
    *,
    org_id: int | None = None,
    user_type_id: int | None = None,
    status: BulkRunStatus | None = None,
    action: BulkAction | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RunPage:
    """Runs matching every filter given, newest first; ``since`` (naive: UTC) is inclusive."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit {limit} must be between 1 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise InvalidInput(f"offset {offset} must not be negative")
    conditions = []
    if org_id is not None:
        conditions.append(BulkRun.org_id == org_id)
    if user_type_id is not None:
        conditions.append(BulkRun.user_type_id == user_type_id)
    if status is not None:
        conditions.append(BulkRun.status == status)
    if action is not None:
        conditions.append(BulkRun.action == action)
    if since is not None:
        conditions.append(BulkRun.created_at >= _utc(since))
    total = session.scalar(select(func.count()).select_from(BulkRun).where(*conditions)) or 0
    query = (
        select(BulkRun, PortalUserType.name)
        .join(PortalUserType, PortalUserType.id == BulkRun.user_type_id)
        .where(*conditions)
        .order_by(BulkRun.created_at.desc(), BulkRun.id.desc())
        .limit(limit)
        .offset(offset)
    )
    runs = [_summary(run, type_name) for run, type_name in session.execute(query)]
    return RunPage(runs, total, limit, offset)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _summary(run: BulkRun, user_type_name: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "org_id": run.org_id,
        "user_type_id": run.user_type_id,
        "user_type": user_type_name,
        "action": run.action.value,
        "status": run.status.value,
        "requested": run.requested,
        "sent": run.sent,
        "failed": run.failed,
        "queued": run.queued,
        "inviter_id": run.inviter_id,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
