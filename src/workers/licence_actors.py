"""The nightly licence reconciliation actor: catch up every org's reports, then email alerts."""

from __future__ import annotations

import logging

import dramatiq

from portalflow.models import utcnow
from portalflow.pipelines.licensing import licence_alerts, reconciliation

from . import runtime
from .actors import MAINTENANCE_QUEUE, MINUTE_MS
from .broker import register

log = logging.getLogger(__name__)


@register
@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=30 * MINUTE_MS)
def reconcile_licences() -> None:
    """Reconcile today, and any day an org missed since its last report; then email alerts.

    Safe to run twice: reports are rewritten in place and no alert is raised or emailed twice.
    Not retried: the next scheduled run catches up whatever this one did not finish.
    """
    current = runtime.current()
    channels = current.channels()  # paced by the process's shared send-rate limiter
    try:
        with current.session() as session:
            summary = reconciliation.catch_up(session, utcnow().date())
            emailed = licence_alerts.email_pending_alerts(session, current.settings, channels)
    finally:
        channels.close()
    log.info(
        "licences reconciled: %d orgs, %d reports, %d counters corrected, %d alerts, %d emailed",
        summary.orgs,
        summary.reports_written,
        summary.counters_corrected,
        summary.alerts_raised,
        emailed,
    )
