"""The 7-day expiry sweep: ``sent`` invitations past ``expires_at`` become ``expired``.

Set-based and keyset-paginated on ``expires_at`` along the ``(status, expires_at)`` index:
each batch is one UPDATE of up to ``batch_size`` rows picked by a CTE that locks them
(``FOR UPDATE SKIP LOCKED``), then a commit, so a transaction never holds more than one
batch. Two sweeps at once split the rows between them and never count one twice; a
second run finds nothing; with nothing due the whole sweep is one indexed query.

Tokens are also checked for expiry when used (:mod:`portalflow.pipelines.tokens`), so the
sweep only makes the status visible to admins and reports; it is never what keeps an
expired link from working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus

from .invitation_states import Transition, has_status, move

# A batch's row locks last as long as its transaction: 1,000 rows keep that well under a
# second on a busy machine, and the sweep's time is per-row index work, not batch count.
DEFAULT_BATCH_SIZE = 1000


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
    after: datetime | None = None
    postgres = session.get_bind().dialect.name == "postgresql"
    while True:
        if postgres:
            # A batch a crash loses is swept again next time: no need to wait for the WAL
            # to reach the disk at each commit.
            session.execute(text("SET LOCAL synchronous_commit = off"))
        # The value written into the SQL: the partial index of sent rows then serves.
        due = select(Invitation.id).where(
            has_status(InvitationStatus.SENT), Invitation.expires_at <= now
        )
        if after is not None:
            # ">=": rows sharing the last batch's expires_at may remain; expired ones no
            # longer match, and the scan starts past the entries earlier batches left.
            due = due.where(Invitation.expires_at >= after)
        # Materialized: the locking LIMIT query runs once, not once per row of the UPDATE.
        batch = (
            due.order_by(Invitation.expires_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        swept = list(
            session.scalars(
                move(
                    Transition.EXPIRE, Invitation.id == batch.c.id, values={"updated_at": now}
                ).returning(Invitation.expires_at)
            )
        )
        session.commit()
        if not swept:
            break
        expired += len(swept)
        batches += 1
        after = max(swept)
        if len(swept) < batch_size:
            break  # a short batch was the last one: no need to ask again
    return ExpirySweep(expired=expired, batches=batches)
