"""Idempotency keys: a retried request gets the first answer again, never a second run.

Rules (issue 17, RFC draft "The Idempotency-Key HTTP Header Field"):

- A key belongs to one org and means one request: the same key with the same method, path
  and body is answered with the first answer (status and body) and does nothing again; the
  same key with another request is refused with :class:`IdempotencyConflict` (HTTP 409).
- Only a request that succeeded is remembered: the key's row is written in the caller's
  transaction, beside the work it answers, so a refused or failed request leaves no key and
  a concurrent request with the same key waits on the unique index, then replays.
- A key lives :data:`KEY_RETENTION` (24 hours); after that it is as if never used, and
  :func:`portalflow.pipelines.ops.retention.delete_old_idempotency_keys` deletes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portalflow.models import IdempotencyKey, utcnow
from portalflow.pipelines.errors import PortalflowError

KEY_RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyConflict(PortalflowError):
    """An idempotency key (or a CRM event id) was used before for another request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a request, to give again."""

    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: Any) -> str:
    """SHA-256 of the method, path and body as canonical JSON (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def find_answer(
    session: Session, org_id: int, key: str, fingerprint: str, now: datetime | None = None
) -> StoredAnswer | None:
    """The stored answer for ``key``, None when unused (or expired); IdempotencyConflict when
    it was used for another request."""
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.org_id == org_id, IdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.created_at < (now or utcnow()) - KEY_RETENTION:
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for another request; use a new key"
        )
    return StoredAnswer(row.status_code, row.response)


def remember_answer(
    session: Session,
    org_id: int,
    key: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any],
) -> StoredAnswer | None:
    """Store the answer under ``key`` (flushes, never commits).

    None when stored; when another request stored the key first (a concurrent retry), its
    answer, and the caller must roll its own work back and give that one instead.
    """
    row = IdempotencyKey(
        org_id=org_id,
        key=key,
        request_hash=fingerprint,
        status_code=status_code,
        response=body,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        session.rollback()
        answer = find_answer(session, org_id, key, fingerprint)
        if answer is None:  # not a duplicate key after all
            raise
        return answer
    return None


def delete_expired(session: Session, older_than: datetime, batch: int) -> int:
    """Delete up to ``batch`` keys created before ``older_than``; returns how many (no commit)."""
    ids = list(
        session.scalars(
            select(IdempotencyKey.id)
            .where(IdempotencyKey.created_at < older_than)
            .order_by(IdempotencyKey.id)
            .limit(batch)
        )
    )
    if not ids:
        return 0
    result = session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
