"""What admins read after a bulk run: totals, failures by reason, the failed invitees."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import BulkActionRefusal, BulkRun, Invitation, InvitationStatus
from portalflow.pipelines.errors import NotFound

FAILED_INVITEES_SHOWN = 1000


def failures_by_reason(session: Session, run_ids: Iterable[int]) -> dict[str, int]:
    """Failed invitations per code, most frequent first."""
    rows = session.execute(
        select(Invitation.failure_code, func.count())
        .where(
            Invitation.bulk_run_id.in_(list(run_ids)),
            Invitation.status == InvitationStatus.FAILED,
        )
        .group_by(Invitation.failure_code)
    ).all()
    return dict(sorted(((code or "unknown", n) for code, n in rows), key=lambda r: (-r[1], r[0])))


def summary(session: Session, run_ids: Iterable[int]) -> dict[str, Any]:
    """``{"sent": N, "failed": {"<code>": N, ...}}`` over one or more runs."""
    run_ids = list(run_ids)
    sent = session.scalar(
        select(func.coalesce(func.sum(BulkRun.sent), 0)).where(BulkRun.id.in_(run_ids))
    )
    return {"sent": int(sent or 0), "failed": failures_by_reason(session, run_ids)}


def bulk_run_report(
    session: Session, run_id: int, *, org_id: int | None = None, limit: int = FAILED_INVITEES_SHOWN
) -> dict[str, Any]:
    """One run's totals and its failed invitees with their reasons (refused by another org)."""
    run = session.get(BulkRun, run_id)
    if run is None or (org_id is not None and run.org_id != org_id):
        raise NotFound(
            f"bulk run {run_id} does not exist" + (f" in org {org_id}" if org_id else "")
        )
    failed = session.execute(
        select(
            Invitation.crm_id,
            Invitation.address,
            Invitation.failure_code,
            Invitation.failure_detail,
        )
        .where(Invitation.bulk_run_id == run_id, Invitation.status == InvitationStatus.FAILED)
        .order_by(Invitation.id)
        .limit(limit)
    ).all()
    refused = session.execute(
        select(BulkActionRefusal.portal_user_id, BulkActionRefusal.code, BulkActionRefusal.detail)
        .where(BulkActionRefusal.bulk_run_id == run_id)
        .order_by(BulkActionRefusal.id)
        .limit(limit)
    ).all()
    return {
        "id": run.id,
        "action": run.action.value,
        "org_id": run.org_id,
        "user_type_id": run.user_type_id,
        "status": run.status.value,
        "language": run.language,
        "requested": run.requested,
        "queued": run.queued,
        "sent": run.sent,
        "failed": run.failed,
        "failed_by_reason": failures_by_reason(session, [run_id]),
        "failed_invitees": [
            {"crm_id": crm_id, "address": address, "reason": code, "detail": detail}
            for crm_id, address, code, detail in failed
        ],
        "refused_users": [
            {"portal_user_id": user_id, "code": code, "detail": detail}
            for user_id, code, detail in refused
        ],
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def progress(session: Session, run_ids: Iterable[int]) -> tuple[int, int, bool]:
    """(decided, requested, all completed) over runs: for progress bars."""
    rows = session.execute(
        select(BulkRun.sent + BulkRun.failed, BulkRun.requested, BulkRun.finished_at).where(
            BulkRun.id.in_(list(run_ids))
        )
    ).all()
    decided = sum(row[0] for row in rows)
    requested = sum(row[1] for row in rows)
    return decided, requested, all(row[2] is not None for row in rows)
