"""Recovering CRM webhook deliveries from the rows: lapsed claims, lost messages, old rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from portalflow.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFailureCode,
)

from .delivery import OPEN, PURGE_BATCH, SWEEP_BATCH, DeliveryConfig, S


@dataclass
class Replay:
    """What one replay pass found: lapsed claims given back, rows to enqueue."""

    lapsed: int = 0
    dead: int = 0
    purged: int = 0  # delivered rows past the retention, deleted
    ids: list[int] = field(default_factory=list)


def replay(
    session: Session,
    now: datetime,
    grace: timedelta,
    config: DeliveryConfig,
    retention: timedelta | None = None,
) -> Replay:
    """Give back the claims of dead workers and find due rows whose message was lost; commits.

    A due row is enqueued only when it is first in its line; its ``next_attempt_at`` is
    moved to now, so the next pass leaves it alone for another ``grace``. With
    ``retention``, delivered rows older than that are deleted (a batch per pass); dead ones
    stay for the admin.
    """
    found = Replay()
    if retention is not None:
        found.purged = _purge_delivered(session, now - retention)
    given_back = _give_back_lapsed(session, now, config, found)
    due = list(session.scalars(_lost(now - grace).limit(SWEEP_BATCH)))
    if due:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due), WebhookDelivery.status == S.PENDING)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    found.ids = sorted(set(given_back) | set(due))
    return found


def _purge_delivered(session: Session, before: datetime) -> int:
    """Delete a batch of rows delivered before ``before``; how many."""
    old = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == S.DELIVERED, WebhookDelivery.delivered_at < before)
        .limit(PURGE_BATCH)
    )
    return session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(old.scalar_subquery()))
        .execution_options(synchronize_session=False)
    ).rowcount


def _give_back_lapsed(
    session: Session, now: datetime, config: DeliveryConfig, found: Replay
) -> list[int]:
    """Claims past their deadline: dead when out of attempts, else pending again (their ids)."""
    lapsed = WebhookDelivery.status == S.SENDING, WebhookDelivery.claim_deadline < now
    common = {
        "claim_token": None,
        "claim_deadline": None,
        "last_failure_code": WebhookFailureCode.LEASE_EXPIRED.value,
        "last_detail": "the worker delivering it stopped before recording the answer",
        "updated_at": now,
    }
    found.dead = session.execute(
        update(WebhookDelivery)
        .where(*lapsed, WebhookDelivery.attempts >= config.max_attempts)
        .values(status=S.DEAD, **common)
        .execution_options(synchronize_session=False)
    ).rowcount
    given_back = list(
        session.scalars(
            update(WebhookDelivery)
            .where(*lapsed)
            .values(status=S.PENDING, next_attempt_at=now, **common)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    found.lapsed = len(given_back)
    return given_back


def _lost(before: datetime) -> Select[tuple[int]]:
    """Pending rows due before ``before``, of an enabled endpoint, first in their line."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.order_key == WebhookDelivery.order_key,
        earlier.id < WebhookDelivery.id,
        earlier.status.in_(OPEN),
    )
    return (
        select(WebhookDelivery.id)
        .join(
            WebhookEndpoint,
            and_(WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.enabled),
        )
        .where(
            WebhookDelivery.status == S.PENDING,
            WebhookDelivery.next_attempt_at <= before,
            ~blocked,
        )
        .order_by(WebhookDelivery.id)
    )
