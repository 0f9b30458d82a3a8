"""Retention: raw provider webhook events are deleted once handled and old enough.

Only ``processed`` and ``ignored`` rows go: a ``received`` row is still waiting for its
actor and a ``failed`` one is kept for someone to look at. Deleted in keyset batches by
id, committing after each, so a large backlog never holds one long transaction.

A row younger than the SNS replay horizon is never deleted, whatever ``older_than`` says:
while a replayed SNS message is still inside its acceptance window, its stored MessageId is
what refuses it (``pipelines/delivery/sns.py``); once the row may go, the window refuses it instead.

Idempotency keys of the admin API go once past their 24 hours
(:func:`delete_old_idempotency_keys`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portalflow.models import ProviderEvent, ProviderEventStatus, utcnow
from portalflow.pipelines.delivery.sns import REPLAY_HORIZON
from portalflow.pipelines.tenancy import idempotency

DEFAULT_BATCH_SIZE = 1000
DELETABLE_STATUSES = (ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED)


def delete_old_provider_events(
    session: Session, older_than: datetime, batch: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete handled provider events received before ``older_than``; returns how many.

    Commits after each batch of at most ``batch`` rows; safe to run twice or at once.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    older_than = min(older_than, utcnow() - REPLAY_HORIZON)
    deleted = 0
    last_id = 0
    while True:
        ids = list(
            session.scalars(
                select(ProviderEvent.id)
                .where(
                    ProviderEvent.status.in_(DELETABLE_STATUSES),
                    ProviderEvent.received_at < older_than,
                    ProviderEvent.id > last_id,
                )
                .order_by(ProviderEvent.id)
                .limit(batch)
            )
        )
        if not ids:
            return deleted
        result = session.execute(
            delete(ProviderEvent)
            .where(ProviderEvent.id.in_(ids), ProviderEvent.status.in_(DELETABLE_STATUSES))
            .execution_options(synchronize_session=False)
        )
        session.commit()
        deleted += result.rowcount or 0
        last_id = ids[-1]
        if len(ids) < batch:
            return deleted


def delete_old_idempotency_keys(
    session: Session, older_than: datetime | None = None, batch: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete idempotency keys created before ``older_than`` (default: past their 24 hours).

    Never one still within :data:`~portalflow.pipelines.tenancy.idempotency.KEY_RETENTION`: its
    replays must still find it. Commits after each batch; returns how many went.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    horizon = utcnow() - idempotency.KEY_RETENTION
    older_than = horizon if older_than is None else min(older_than, horizon)
    deleted = 0
    while True:
        count = idempotency.delete_expired(session, older_than, batch)
        session.commit()
        deleted += count
        if count < batch:
            return deleted
