"""The 7-day expiry sweep: ``sent`` invitations past ``expires_at`` become ``expired``.

Set-based and keyset-paginated by id: each batch locks up to ``batch_size`` ids
(``FOR UPDATE SKIP LOCKED``), updates only those still ``sent`` and commits, so a
transaction never holds more than one batch. Two sweeps at once split the rows between
them and never count one twice; a second run finds nothing; with nothing due the whole
sweep is one indexed query.

Tokens are also checked for expiry when used (:mod:`portalflow.pipelines.tokens`), so the
sweep only makes the status visible to admins and reports; it is never what keeps an
expired link from working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus

DEFAULT_BATCH_SIZE = 2000


@dataclass(frozen=True)
class ExpirySweep:
    """What one sweep did: invitations it expired, and transactions (batches) it committed."""

    expired: int = 0
    batches: int = 0


def expire_invitations(
    session: Session, now: datetime, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> ExpirySweep:
    """Expire every ``sent`` invitation with ``expires_at <= now``; commits after each batch.

    An invitation is valid for 7 days: at exactly ``sent_at + 7 days`` it is expired.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    expired = batches = 0
    last_id = 0
    while True:
        ids = list(
            session.scalars(
                select(Invitation.id)
                .where(
                    Invitation.status == InvitationStatus.SENT,
                    Invitation.expires_at <= now,
                    Invitation.id > last_id,
                )
                .order_by(Invitation.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            session.commit()  # end the (read-only) transaction the SELECT opened
            break
        result = session.execute(
            update(Invitation)
            .where(Invitation.id.in_(ids), Invitation.status == InvitationStatus.SENT)
            .values(status=InvitationStatus.EXPIRED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        expired += result.rowcount
        batches += 1
        last_id = ids[-1]
        if len(ids) < batch_size:
            break  # a short batch was the last one: no need to ask again
    return ExpirySweep(expired=expired, batches=batches)
