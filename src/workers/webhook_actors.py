"""CRM webhook actors: deliver one outbox row; replay what lost its message.

The outbox rows are written by the flows in their own transactions; an ``after_commit``
hook here sends one ``deliver_webhook`` per row once that transaction has committed
(enqueue after commit). A send that fails, or a process that dies in between, leaves the
row pending, and ``replay_webhooks`` (every minute) enqueues it: the database is the
source of truth, Redis only transport.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import dramatiq
from sqlalchemy import event
from sqlalchemy.orm import Session

from portalflow.models import utcnow
from portalflow.pipelines.crm_webhooks import delivery, outbox

from . import runtime
from .actors import (
    INFRASTRUCTURE_RETRIES,
    MAINTENANCE_QUEUE,
    MINUTE_MS,
    RECOVERY_BACKOFF,
    MalformedMessage,
    message_id,
    retry_infrastructure_errors,
)
from .broker import register

log = logging.getLogger(__name__)

WEBHOOKS_QUEUE = "webhooks"


@register
@dramatiq.actor(
    queue_name=WEBHOOKS_QUEUE,
    time_limit=2 * MINUTE_MS,
    throws=(MalformedMessage,),
    **INFRASTRUCTURE_RETRIES,
)
def deliver_webhook(delivery_id: int) -> None:
    """POST one outbox row to its endpoint, signed; schedule its retry or the next in line."""
    delivery_id = message_id(delivery_id, "delivery_id")
    current = runtime.current()
    config = delivery.DeliveryConfig.from_settings(current.settings)
    with current.session() as session:
        outcome = delivery.deliver(session, delivery_id, config)
    if outcome.retry_after is not None:
        deliver_webhook.send_with_options(
            args=(delivery_id,), delay=_milliseconds(outcome.retry_after)
        )
    for next_id in outcome.next_ids:
        deliver_webhook.send(next_id)


@register
@dramatiq.actor(
    queue_name=MAINTENANCE_QUEUE,
    time_limit=5 * MINUTE_MS,
    retry_when=retry_infrastructure_errors,
    **RECOVERY_BACKOFF,
)
def replay_webhooks() -> None:
    """Give back lapsed claims and enqueue due deliveries whose message was lost."""
    current = runtime.current()
    config = delivery.DeliveryConfig.from_settings(current.settings)
    grace = timedelta(seconds=current.settings.replay_grace_seconds)
    with current.session() as session:
        found = delivery.replay(session, utcnow(), grace, config)
    for delivery_id in found.ids:
        deliver_webhook.send(delivery_id)
    if found.ids or found.dead:
        log.info(
            "webhooks replayed: %d lapsed claims, %d dead, %d enqueued",
            found.lapsed,
            found.dead,
            len(found.ids),
        )


def _milliseconds(delay: timedelta) -> int:
    return max(int(delay.total_seconds() * 1000), 0)


@event.listens_for(Session, "after_commit")
def _enqueue_written(session: Session) -> None:
    """Enqueue the deliveries the committed transaction wrote (the replay covers a failure)."""
    ids = outbox.written_ids(session)
    try:
        for delivery_id in ids:
            deliver_webhook.send(delivery_id)
    except Exception:
        log.warning("enqueueing webhook deliveries %s failed; replay will", ids, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_written(session: Session, *_: Any) -> None:
    """Rolled back: the rows were never written."""
    outbox.written_ids(session)
