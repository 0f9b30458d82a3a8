"""Sending the outbox: claim a row, POST it signed, record the answer; replay what was lost.

    pending ──claim──▶ sending ──2xx──▶ delivered
    sending ──fail (attempts left)──▶ pending (next_attempt_at: exponential backoff)
    sending ──fail (last attempt)──▶ dead ──redeliver (an admin)──▶ pending
    sending ──claim lapsed (the worker died)──▶ pending (or dead, on the last attempt)

At least once: a worker killed after the POST and before the record sends the event again
(same event id) once its claim lapses. In order per endpoint and user: a row is claimed
only when no earlier row of its endpoint and ``order_key`` is still open, and settling a
row names the next one to send.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookFailureCode,
    utcnow,
)
from portalflow.pipelines.errors import InvalidInput, NotFound

from . import endpoints, signing, transport, urls

S = WebhookDeliveryStatus
OPEN = (S.PENDING, S.SENDING)
# A message may arrive a little before its row's next_attempt_at (clocks differ).
EARLY_SLACK = timedelta(seconds=1)
SWEEP_BATCH = 1000
PURGE_BATCH = 5000
# A claim outlives one POST (connect and read timeouts) by this much before recovery may
# hand the row on; a worker killed mid-POST delays its event by about the lease.
LEASE_SLACK_SECONDS = 5.0


@dataclass(frozen=True)
class DeliveryConfig:
    """What sending needs from the settings (and, for tests, a resolver and TLS context)."""

    settings: Settings
    allowed_networks: tuple[urls.Network, ...]
    timeout: float
    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    # A claim lapses this long after it was taken: well past one POST's timeouts.
    lease: timedelta
    resolver: urls.Resolver = urls.resolve
    tls_context: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            settings=settings,
            allowed_networks=settings.webhook_networks(),
            timeout=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            retry_base=timedelta(seconds=settings.webhook_retry_base_seconds),
            retry_max=timedelta(seconds=settings.webhook_retry_max_seconds),
            lease=timedelta(seconds=2 * settings.webhook_timeout_seconds + LEASE_SLACK_SECONDS),
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: doubling, capped."""
        return min(self.retry_base * (2 ** max(attempts - 1, 0)), self.retry_max)


class Result(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed; pending again until next_attempt_at
    DEAD = "dead"  # failed on its last attempt
    BLOCKED = "blocked"  # an earlier event of the same user is still open
    NOT_DUE = "not_due"  # its next attempt is later (a message that came early)
    PAUSED = "paused"  # its endpoint is disabled: it waits until enabled again
    ALREADY_HANDLED = "already_handled"  # gone, settled, or claimed by another worker


@dataclass
class DeliveryOutcome:
    """What one ``deliver`` call did, and what the caller must enqueue."""

    delivery_id: int
    result: Result
    retry_after: timedelta | None = None
    status_code: int | None = None
    failure: WebhookFailureCode | None = None
    detail: str = ""
    next_ids: list[int] = field(default_factory=list)  # rows this one was holding back


def deliver(
    session: Session, delivery_id: int, config: DeliveryConfig, now: datetime | None = None
) -> DeliveryOutcome:
    """Send one pending delivery if it is due and first in its line; commits."""
    now = now or utcnow()
    row = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row is not None else None
    if row is not None and endpoint is None:
        # Written while its endpoint was being deleted (no foreign key holds it back).
        session.delete(row)
        session.commit()
        return DeliveryOutcome(delivery_id, Result.ALREADY_HANDLED)
    waiting = _why_not_now(session, row, endpoint, now)
    if waiting is not None:
        session.rollback()
        return DeliveryOutcome(delivery_id, waiting)
    assert row is not None and endpoint is not None
    token = secrets.token_hex(16)
    attempts = _claim(session, delivery_id, token, now + config.lease, now)
    if attempts is None:  # another worker claimed it between the read and the update
        session.rollback()
        return DeliveryOutcome(delivery_id, Result.ALREADY_HANDLED)
    signing_secrets = endpoints.signing_secrets(config.settings, endpoint, now)
    url, body, event_id = endpoint.url, row.body.encode(), row.event_id
    event_type, endpoint_id, order_key = row.event_type.value, row.endpoint_id, row.order_key
    session.commit()  # the claim is durable before anything leaves

    answer = _send(url, body, event_id, event_type, signing_secrets, config)

    outcome, values = _settle(delivery_id, answer, attempts, config, utcnow())
    recorded = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.claim_token == token,
            WebhookDelivery.status == S.SENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if not recorded:  # our claim lapsed and recovery handed the row on: it is not ours
        return DeliveryOutcome(delivery_id, Result.ALREADY_HANDLED, detail=answer.detail)
    if outcome.result != Result.RETRY:
        outcome.next_ids = next_in_line(session, endpoint_id, order_key)
    return outcome


def _why_not_now(
    session: Session,
    row: WebhookDelivery | None,
    endpoint: WebhookEndpoint | None,
    now: datetime,
) -> Result | None:
    """Why this delivery is not sent now (handled, not due, paused, behind another), or None."""
    if row is None or row.status != S.PENDING:
        return Result.ALREADY_HANDLED
    if row.next_attempt_at is not None and row.next_attempt_at > now + EARLY_SLACK:
        return Result.NOT_DUE
    if endpoint is None or not endpoint.enabled:
        return Result.PAUSED
    if row.order_key is not None and session.scalar(
        select(_earlier_open(row.endpoint_id, row.order_key, row.id))
    ):
        return Result.BLOCKED
    return None


def _claim(
    session: Session, delivery_id: int, token: str, deadline: datetime, now: datetime
) -> int | None:
    """Claim the pending row (compare-and-set); its attempt count, or None if it was taken."""
    return session.scalar(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == S.PENDING)
        .values(
            status=S.SENDING,
            attempts=WebhookDelivery.attempts + 1,
            claim_token=token,
            claim_deadline=deadline,
            updated_at=now,
        )
        .returning(WebhookDelivery.attempts)
        .execution_options(synchronize_session=False)
    )


def _settle(
    delivery_id: int, answer: transport.Answer, attempts: int, config: DeliveryConfig, at: datetime
) -> tuple[DeliveryOutcome, dict[str, Any]]:
    """The attempt's outcome, and the row's new values: delivered, dead, or retried later."""
    outcome = DeliveryOutcome(
        delivery_id, Result.DELIVERED, status_code=answer.status, failure=answer.failure
    )
    outcome.detail = answer.detail
    values: dict[str, Any] = {
        "claim_token": None,
        "claim_deadline": None,
        "last_status_code": answer.status,
        "last_failure_code": answer.failure.value if answer.failure else None,
        "last_detail": answer.detail or None,
        "updated_at": at,
    }
    if answer.ok:
        values |= {"status": S.DELIVERED, "delivered_at": at}
    elif attempts >= config.max_attempts:
        outcome.result = Result.DEAD
        values |= {"status": S.DEAD}
    else:
        outcome.result = Result.RETRY
        outcome.retry_after = config.backoff(attempts)
        values |= {"status": S.PENDING, "next_attempt_at": at + outcome.retry_after}
    return outcome, values


def _send(
    url: str,
    body: bytes,
    event_id: str,
    event_type: str,
    signing_secrets: Sequence[str],
    config: DeliveryConfig,
) -> transport.Answer:
    target = urls.check(url, config.allowed_networks, config.resolver)
    if isinstance(target, urls.Refused):
        code = (
            WebhookFailureCode.CONNECTION_FAILED
            if target.code.value == "url_unresolvable"
            else WebhookFailureCode.ADDRESS_REFUSED
        )
        return transport.Answer(None, code, target.detail)
    timestamp = int(time.time())
    headers = signing.headers(signing_secrets, timestamp, body, event_id, event_type)
    return transport.post(target, body, headers, config.timeout, config.tls_context)


def _earlier_open(endpoint_id: int, order_key: str, delivery_id: int) -> Any:
    """EXISTS an open row of the same endpoint and order key written before this one."""
    return exists().where(
        WebhookDelivery.endpoint_id == endpoint_id,
        WebhookDelivery.order_key == order_key,
        WebhookDelivery.id < delivery_id,
        WebhookDelivery.status.in_(OPEN),
    )


def next_in_line(session: Session, endpoint_id: int, order_key: str | None) -> list[int]:
    """The first pending row of an endpoint's line, now that the one before it settled."""
    if order_key is None:
        return []
    first = session.scalar(
        select(func.min(WebhookDelivery.id)).where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.order_key == order_key,
            WebhookDelivery.status.in_(OPEN),
        )
    )
    session.rollback()
    return [first] if first is not None else []


def list_deliveries(
    session: Session,
    org_id: int,
    *,
    status: WebhookDeliveryStatus | None = None,
    endpoint_id: int | None = None,
    limit: int = 100,
) -> list[WebhookDelivery]:
    """An org's deliveries, newest first (optionally of one status or endpoint)."""
    query = select(WebhookDelivery).where(WebhookDelivery.org_id == org_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if endpoint_id is not None:
        endpoints.get_endpoint(session, org_id, endpoint_id)
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


def redeliver(
    session: Session, org_id: int, delivery_ids: Sequence[int], now: datetime | None = None
) -> list[int]:
    """Put dead deliveries back to pending with fresh attempts (flushed); the ids moved."""
    now = now or utcnow()
    rows = dict(
        session.execute(
            select(WebhookDelivery.id, WebhookDelivery.status).where(
                WebhookDelivery.org_id == org_id, WebhookDelivery.id.in_(list(delivery_ids))
            )
        ).all()
    )
    missing = [str(i) for i in delivery_ids if i not in rows]
    if missing:
        raise NotFound(f"webhook deliveries {', '.join(missing)} do not exist in org {org_id}")
    alive = [str(i) for i, status in rows.items() if status != S.DEAD]
    if alive:
        raise InvalidInput(
            f"only dead deliveries can be redelivered; not dead: {', '.join(sorted(alive))}"
        )
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(list(rows)), WebhookDelivery.status == S.DEAD)
        .values(status=S.PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return sorted(rows)


def describe(row: WebhookDelivery) -> dict[str, Any]:
    """What an admin sees of one delivery (the body is the CRM's to read, not listed)."""
    return {
        "id": row.id,
        "endpoint_id": row.endpoint_id,
        "event_id": row.event_id,
        "event_type": row.event_type.value,
        "status": row.status.value,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_failure_code": row.last_failure_code,
        "last_status_code": row.last_status_code,
        "last_detail": row.last_detail,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }


def dead_counts(session: Session) -> dict[int, int]:
    """Org id -> its dead deliveries (for /ops)."""
    return dict(
        session.execute(
            select(WebhookDelivery.org_id, func.count())
            .where(WebhookDelivery.status == S.DEAD)
            .group_by(WebhookDelivery.org_id)
        ).all()
    )
