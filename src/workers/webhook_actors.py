"""CRM webhook actors: deliver outbox rows; replay what lost its message.

The outbox rows are written by the flows in their own transactions; an ``after_commit``
hook here sends ``deliver_webhooks`` messages for them once that transaction has committed
(enqueue after commit). A send that fails, or a process that dies in between, leaves the
row pending, and ``replay_webhooks`` (every minute) enqueues it: the database is the
source of truth, Redis only transport.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import dramatiq
from sqlalchemy import event
from sqlalchemy.orm import Session

from portalflow.models import utcnow
from portalflow.pipelines.crm_webhooks import delivery, outbox, replays

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
# Ids per message: one message per committed batch of changes (not one per row: enqueueing
# is most of what the outbox costs a bulk invite), small enough that a slow endpoint holds
# up few others (a message's POSTs are sequential, each bounded by the timeout).
MESSAGE_BATCH = 50


@register
@dramatiq.actor(
    queue_name=WEBHOOKS_QUEUE,
    time_limit=10 * MINUTE_MS,
    throws=(MalformedMessage,),
    **INFRASTRUCTURE_RETRIES,
)
def deliver_webhooks(delivery_ids: list[int]) -> None:
    """POST outbox rows to their endpoints, signed, in id order; schedule retries and the
    rows each one was holding back."""
    if not isinstance(delivery_ids, list) or not delivery_ids:
        raise MalformedMessage(f"delivery_ids must be a list of ids, got {delivery_ids!r}")
    ids = sorted({message_id(value, "delivery_ids[]") for value in delivery_ids})
    current = runtime.current()
    config = delivery.DeliveryConfig.from_settings(current.settings)
    unblocked: list[int] = []
    with current.session() as session:
        for delivery_id in ids:
            outcome = delivery.deliver(session, delivery_id, config)
            if outcome.retry_after is not None:
                deliver_webhooks.send_with_options(
                    args=([delivery_id],), delay=_milliseconds(outcome.retry_after)
                )
            unblocked.extend(i for i in outcome.next_ids if i not in ids)
    enqueue(unblocked)


def enqueue(delivery_ids: Sequence[int]) -> None:
    """Send ``deliver_webhooks`` messages for the ids, a bounded batch per message."""
    ids = sorted(set(delivery_ids))
    for start in range(0, len(ids), MESSAGE_BATCH):
        deliver_webhooks.send(ids[start : start + MESSAGE_BATCH])


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
    retention = timedelta(days=current.settings.retention_days)
    with current.session() as session:
        found = replays.replay(session, utcnow(), grace, config, retention)
    enqueue(found.ids)
    if found.ids or found.dead or found.purged:
        log.info(
            "webhooks replayed: %d lapsed claims, %d dead, %d enqueued, %d old ones deleted",
            found.lapsed,
            found.dead,
            len(found.ids),
            found.purged,
        )


def _milliseconds(delay: timedelta) -> int:
    return max(int(delay.total_seconds() * 1000), 0)


@event.listens_for(Session, "after_commit")
def _enqueue_written(session: Session) -> None:
    """Enqueue the deliveries the committed transaction wrote (the replay covers a failure)."""
    ids = outbox.written_ids(session)
    if not ids:
        return
    try:
        enqueue(ids)
    except Exception:
        log.warning("enqueueing webhook deliveries %s failed; replay will", ids, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_written(session: Session, *_: Any) -> None:
    """Rolled back: the rows were never written."""
    outbox.written_ids(session)
