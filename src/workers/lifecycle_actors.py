"""Actors of the portal user lifecycle: the expiry sweep."""

from __future__ import annotations

import logging

import dramatiq

from portalflow.models import utcnow
from portalflow.pipelines.invitations import expiry

from . import runtime
from .actors import MAINTENANCE_QUEUE, MINUTE_MS
from .broker import register

log = logging.getLogger(__name__)


@register
@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=15 * MINUTE_MS)
def expire_invitations_sweep() -> None:
    """Mark sent invitations past their 7 days ``expired`` (batched; safe to run twice)."""
    with runtime.current().session() as session:
        swept = expiry.expire_invitations(session, utcnow())
    if swept.expired:
        log.info("expired %d invitations in %d batches", swept.expired, swept.batches)
