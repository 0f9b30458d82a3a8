"""Nightly licence reconciliation: recount, compare, correct, price, flag, report.

For each org (200 at a time, one transaction per batch) and one day:

1. **Recount** licence holders per user type with one ``GROUP BY`` aggregate over
   ``portal_users`` for the whole batch (deactivated and removed users hold no licence).
   Nothing per portal user is ever loaded: memory grows with the number of user types in a
   batch, never with the number of users.
2. **Compare** with the licences in force that day (paid types; read in the same query with
   :func:`.purchases.in_force_expression`) or the free allowance (the Client Portal: 10,000,
   or 10 on a trial), and with the cached counter ``portal_user_types.holders_cached``; a
   drifted counter is corrected with one bulk UPDATE per batch.
3. **Price** the month over the org's purchased licences of paid types with the org's slabs
   (:func:`.pricing.quote`; the standard price list unless the org has its own).
4. **Flag** overage (more holders than licences, e.g. after a purchase was reduced) and use
   at or above the org's ``near_limit_percent``; a trial past its 30 days; and, for an org
   that fell to the Free edition after its trial, schedule the portal's deletion 30 days
   after the trial's end (a paid edition keeps the portal: nothing is scheduled, and a
   schedule left from an earlier downgrade is cleared).
5. **Write** one :class:`LicenceReport` per org per day (an upsert on ``(org_id, day)``:
   reconciling a day again rewrites the same row) and raise :class:`LicenceAlert` rows with
   ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``, so an alert is raised once however
   often its day is reconciled.

Steps 2 to 4 are pure rules over the counts, in :mod:`.assessment` (the per-type limit is
:func:`.licences.licence_limit`, the one enforcement uses); this module reads and writes.

History is not kept: a past day (see :func:`catch_up`) is recounted from the rows as they
are now, against the purchases in force on that day.

Example::

    summary = reconcile(session, date(2026, 11, 23))
    summary.reports_written  # one per org
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    LicenceAlert,
    LicenceReport,
    Org,
    PortalUser,
    PortalUserType,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines import bulk_sql
from portalflow.pipelines.crm_webhooks import outbox

from . import purchases
from .assessment import PriceBook, TypeCount, assess
from .licences import NON_HOLDING_STATUSES

log = logging.getLogger(__name__)

BATCH_ORGS = 200


@dataclass(frozen=True)
class ReconcileSummary:
    """What a reconciliation did; ``reports_written`` counts org-days."""

    orgs: int = 0
    reports_written: int = 0
    counters_corrected: int = 0
    alerts_raised: int = 0

    def __add__(self, other: ReconcileSummary) -> ReconcileSummary:
        return ReconcileSummary(
            orgs=self.orgs + other.orgs,
            reports_written=self.reports_written + other.reports_written,
            counters_corrected=self.counters_corrected + other.counters_corrected,
            alerts_raised=self.alerts_raised + other.alerts_raised,
        )


def reconcile(
    session: Session,
    day: date,
    *,
    org_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_ORGS,
) -> ReconcileSummary:
    """Reconcile ``day`` for every org (or ``org_ids``); commits after each batch of orgs.

    Safe to run again for the same day: the report is rewritten in place with the same
    content (given the same rows), counters are already right, and no alert is raised twice.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    now = now or utcnow()
    total = ReconcileSummary()
    prices = PriceBook()
    for orgs in _org_batches(session, org_ids, batch_size):
        total += _reconcile_batch(session, day, orgs, now, prices)
        session.commit()
    session.commit()  # end the read transaction of the last (empty) batch query
    return total


def catch_up(
    session: Session,
    today: date,
    *,
    org_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_ORGS,
) -> ReconcileSummary:
    """Reconcile, per org, every day after its last report through ``today``.

    An org without a report starts today; today is always (re)reconciled, so running this
    twice a day refreshes today's report. A missed day is recounted from the rows as they
    are *now* (history is not kept), against the purchases in force on that day.
    ``orgs`` in the result counts distinct orgs, ``reports_written`` org-days.
    """
    last_reports = (
        select(LicenceReport.org_id, func.max(LicenceReport.day).label("last_day"))
        .group_by(LicenceReport.org_id)
        .subquery()
    )
    query = select(Org.id, last_reports.c.last_day).outerjoin(
        last_reports, last_reports.c.org_id == Org.id
    )
    if org_ids is not None:
        query = query.where(Org.id.in_(list(org_ids)))
    starting: dict[date, list[int]] = defaultdict(list)
    for org_id, last_day in session.execute(query.order_by(Org.id)):
        start = today if last_day is None else min(last_day + timedelta(days=1), today)
        starting[start].append(org_id)
    session.commit()
    total = ReconcileSummary()
    due: list[int] = []
    day = min(starting, default=today)
    while day <= today:
        due = sorted(due + starting.pop(day, []))
        if due:
            total += reconcile(session, day, org_ids=due, now=now, batch_size=batch_size)
        day += timedelta(days=1)
    return replace(total, orgs=len(due))


# -- one batch -------------------------------------------------------------------------------


def _org_batches(
    session: Session, org_ids: Sequence[int] | None, batch_size: int
) -> Iterator[list[Any]]:
    """Rows of org settings, ``batch_size`` orgs at a time (keyset by id)."""
    columns = (
        Org.id,
        Org.edition,
        Org.created_at,
        Org.trial_started_at,
        Org.near_limit_percent,
        Org.price_slabs,
        Org.deletion_scheduled_for,
    )
    if org_ids is not None:
        wanted = sorted(set(org_ids))
        for start in range(0, len(wanted), batch_size):
            chunk = wanted[start : start + batch_size]
            yield list(session.execute(select(*columns).where(Org.id.in_(chunk)).order_by(Org.id)))
        return
    last_id = 0
    while True:
        rows = list(
            session.execute(
                select(*columns).where(Org.id > last_id).order_by(Org.id).limit(batch_size)
            )
        )
        if not rows:
            return
        yield rows
        last_id = rows[-1].id


def _type_counts(session: Session, org_ids: list[int], day: date) -> dict[int, list[TypeCount]]:
    """Per org, each user type with its live holders and its licences in force on ``day``.

    One query for the whole batch: a ``GROUP BY`` over the batch's portal users joined to
    their user types, with the purchases in force as a correlated subquery per type.
    """
    holders = (
        select(PortalUser.user_type_id, func.count().label("holders"))
        .where(
            PortalUser.org_id.in_(org_ids),
            PortalUser.status.not_in(NON_HOLDING_STATUSES),
        )
        .group_by(PortalUser.user_type_id)
        .subquery()
    )
    query = (
        select(
            PortalUserType.org_id,
            PortalUserType.id,
            PortalUserType.name,
            PortalUserType.is_client_portal,
            PortalUserType.holders_cached,
            func.coalesce(holders.c.holders, 0),
            purchases.in_force_expression(day),
        )
        .outerjoin(holders, holders.c.user_type_id == PortalUserType.id)
        .where(PortalUserType.org_id.in_(org_ids))
        .order_by(PortalUserType.org_id, PortalUserType.id)
    )
    by_org: dict[int, list[TypeCount]] = defaultdict(list)
    for org_id, type_id, name, client_portal, cached, count, licences in session.execute(query):
        by_org[org_id].append(
            TypeCount(type_id, name, bool(client_portal), cached, int(count), int(licences))
        )
    return by_org


def _reconcile_batch(
    session: Session, day: date, orgs: list[Any], now: datetime, prices: PriceBook
) -> ReconcileSummary:
    org_ids = [org.id for org in orgs]
    counts = _type_counts(session, org_ids, day)
    found_before = _counters_found_earlier(session, org_ids, day)
    reports: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    counter_fixes: list[dict[str, int]] = []
    deletion_changes: list[dict[str, Any]] = []
    for org in orgs:
        assessed = assess(org, counts.get(org.id, []), day, prices, found_before.get(org.id, {}))
        report = assessed.report
        reports.append({**report, "created_at": now})
        alerts.extend({**alert, "created_at": now} for alert in assessed.alerts)
        counter_fixes.extend(assessed.fixes)
        if report["deletion_scheduled_for"] != org.deletion_scheduled_for:
            deletion_changes.append(
                {"id": org.id, "deletion_scheduled_for": report["deletion_scheduled_for"]}
            )
    if counter_fixes:
        session.execute(update(PortalUserType), counter_fixes)
    if deletion_changes:
        session.execute(update(Org), deletion_changes)
    _upsert_reports(session, reports)
    raised = _raise_alerts(session, alerts)
    return ReconcileSummary(len(orgs), len(reports), len(counter_fixes), raised)


def _counters_found_earlier(
    session: Session, org_ids: list[int], day: date
) -> dict[int, dict[int, int]]:
    """Per org and user type, the counter an earlier run for ``day`` found (its report)."""
    query = select(LicenceReport.org_id, LicenceReport.details).where(
        LicenceReport.org_id.in_(org_ids), LicenceReport.day == day
    )
    return {
        org_id: {detail["user_type_id"]: detail["cached"] for detail in details or []}
        for org_id, details in session.execute(query)
    }


# -- writes ----------------------------------------------------------------------------------


REPORT_FIELDS = (
    "edition",
    "holders",
    "licences",
    "monthly_price_cents",
    "overage",
    "trial_expired",
    "deletion_scheduled_for",
    "counters_corrected",
    "details",
)


def _upsert_reports(session: Session, reports: list[dict[str, Any]]) -> None:
    if not reports:
        return
    statement = bulk_sql.upsertable_insert(session, LicenceReport.__table__)
    statement = statement.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=["org_id", "day"],
        set_={name: statement.excluded[name] for name in REPORT_FIELDS},  # type: ignore[attr-defined]
    )
    session.execute(statement, reports)


def _raise_alerts(session: Session, alerts: list[dict[str, Any]]) -> int:
    """Insert the alerts not raised yet; the number inserted."""
    if not alerts:
        return 0
    table = LicenceAlert.__table__
    statement = bulk_sql.upsertable_insert(session, table).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["dedupe_key"]
    )
    columns = ("id", "org_id", "user_type_id", "kind", "day", "detail")
    raised = session.execute(
        statement.returning(*(table.c[name] for name in columns)), alerts
    ).all()
    outbox.emit(
        session,
        [
            outbox.Event(
                WebhookEventType.LICENCE_ALERT,
                row.org_id,
                {
                    "alert_id": row.id,
                    "kind": row.kind,
                    "user_type_id": row.user_type_id,
                    "day": row.day.isoformat(),
                    "detail": row.detail,
                },
            )
            for row in raised
        ],
    )
    return len(raised)
