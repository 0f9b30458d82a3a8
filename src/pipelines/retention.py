"""Retention: raw provider webhook events are deleted once handled and old enough.

Only ``processed`` and ``ignored`` rows go: a ``received`` row is still waiting for its
actor and a ``failed`` one is kept for someone to look at. Deleted in keyset batches by
id, committing after each, so a large backlog never holds one long transaction.

A row younger than the SNS replay horizon is never deleted, whatever ``older_than`` says:
while a replayed SNS message is still inside its acceptance window, its stored MessageId is
what refuses it (``pipelines/sns.py``); once the row may go, the window refuses it instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portalflow.models import ProviderEvent, ProviderEventStatus, utcnow

from .sns import REPLAY_HORIZON

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
