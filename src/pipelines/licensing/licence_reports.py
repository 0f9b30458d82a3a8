"""Reading the nightly reconciliation's reports and alerts back, as plain values."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import LicenceAlert, LicenceReport

from . import pricing


def latest_reports(session: Session, day: date | None, org_id: int | None) -> list[LicenceReport]:
    """The reports of ``day``, or each org's latest; org by org."""
    query = select(LicenceReport)
    if day is not None:
        query = query.where(LicenceReport.day == day)
    else:
        latest = select(LicenceReport.org_id, func.max(LicenceReport.day).label("day"))
        if org_id is not None:
            latest = latest.where(LicenceReport.org_id == org_id)
        newest = latest.group_by(LicenceReport.org_id).subquery()
        query = query.join(
            newest,
            (newest.c.org_id == LicenceReport.org_id) & (newest.c.day == LicenceReport.day),
        )
    if org_id is not None:
        query = query.where(LicenceReport.org_id == org_id)
    return list(session.scalars(query.order_by(LicenceReport.org_id)))


def report_summary(row: LicenceReport) -> dict[str, Any]:
    return {
        "org_id": row.org_id,
        "day": row.day.isoformat(),
        "edition": row.edition,
        "holders": row.holders,
        "licences": row.licences,
        "monthly_price_cents": row.monthly_price_cents,
        "monthly_price_usd": pricing.cents_to_usd(row.monthly_price_cents),
        "overage": row.overage,
        "trial_expired": row.trial_expired,
        "deletion_scheduled_for": (
            row.deletion_scheduled_for.isoformat() if row.deletion_scheduled_for else None
        ),
        "counters_corrected": row.counters_corrected,
        "user_types": row.details,
    }


def alert_summary(alert: LicenceAlert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "org_id": alert.org_id,
        "user_type_id": alert.user_type_id,
        "kind": alert.kind,
        "day": alert.day.isoformat(),
        "detail": alert.detail,
        "emailed_at": alert.emailed_at.isoformat() if alert.emailed_at else None,
    }
