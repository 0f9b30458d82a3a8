"""The 7-day expiry sweep: ``sent`` invitations past ``expires_at`` become ``expired``.

Set-based and keyset-paginated on ``expires_at`` along the partial index of sent rows:
each batch is one UPDATE of up to ``batch_size`` rows picked by a CTE that locks them
(``FOR UPDATE SKIP LOCKED``), then a commit, so a transaction never holds more than one
batch. On PostgreSQL the due rows are cut into ``workers`` ranges of ``expires_at`` with
equal counts (one aggregate query), and each range is swept on a connection of its own at
the same time: the time goes on per-row heap and index writes, which one backend does on one
core. Two sweeps at once split the rows between them and never count one twice (the row
locks are skipped, and the UPDATE moves only rows still ``sent``); a second run finds
nothing; with nothing due the whole sweep is one indexed query. SQLite sweeps on the one
session it is given.

Tokens are also checked for expiry when used (:mod:`.tokens`), so the sweep only makes
the status visible to admins and reports; it is never what keeps an expired link from
working.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, WebhookEventType
from portalflow.pipelines.crm_webhooks import outbox

from .invitation_states import Transition, has_status, move

# A batch's row locks last as long as its transaction: 5,000 rows stay well under a second
# on a busy machine. Larger batches were measured slower: committed batches let the next
# ones prune the old row versions and index entries they left.
DEFAULT_BATCH_SIZE = 5000
# Connections sweeping at once on PostgreSQL; more than the server has cores gains nothing.
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class ExpirySweep:
    """What one sweep did: invitations it expired, and transactions (batches) it committed."""

    expired: int = 0
    batches: int = 0

    def __add__(self, other: ExpirySweep) -> ExpirySweep:
        return ExpirySweep(self.expired + other.expired, self.batches + other.batches)


def expire_invitations(
    session: Session,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
) -> ExpirySweep:
    """Expire every ``sent`` invitation with ``expires_at <= now``; commits after each batch.

    An invitation is valid for 7 days: at exactly ``sent_at + 7 days`` it is expired.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or workers == 1 or not isinstance(bind, Engine):
        return _sweep_range(session, now, None, None, batch_size)
    count, *cuts = session.execute(
        select(
            func.count(),
            *(
                func.percentile_disc(k / workers).within_group(Invitation.expires_at)
                for k in range(1, workers)
            ),
        ).where(has_status(InvitationStatus.SENT), Invitation.expires_at <= now)
    ).one()
    session.commit()
    if not count:
        return ExpirySweep()
    if count <= batch_size:
        return _sweep_range(session, now, None, None, batch_size)
    ranges = list(pairwise([None, *cuts, None]))
    with ThreadPoolExecutor(len(ranges) - 1, thread_name_prefix="expiry") as pool:
        others = [
            pool.submit(_sweep_range_on_own_session, bind, now, low, high, batch_size)
            for low, high in ranges[1:]
        ]
        total = _sweep_range(session, now, *ranges[0], batch_size)
        for other in others:
            total += other.result()
    return total


def _sweep_range_on_own_session(
    engine: Engine, now: datetime, low: datetime | None, high: datetime | None, batch_size: int
) -> ExpirySweep:
    with Session(engine) as session:
        return _sweep_range(session, now, low, high, batch_size)


def _sweep_range(
    session: Session,
    now: datetime,
    low: datetime | None,
    high: datetime | None,
    batch_size: int,
) -> ExpirySweep:
    """Expire the due rows with ``low <= expires_at < high`` (``None``: unbounded), by batch."""
    expired = batches = 0
    after = low
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
        if high is not None:
            due = due.where(Invitation.expires_at < high)
        # Materialized: the locking LIMIT query runs once, not once per row of the UPDATE.
        batch = (
            due.order_by(Invitation.expires_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        moved = session.execute(
            move(
                Transition.EXPIRE, Invitation.id == batch.c.id, values={"updated_at": now}
            ).returning(Invitation.id, Invitation.expires_at)
        ).all()
        swept = [row.expires_at for row in moved]
        outbox.invitation_events(
            session, WebhookEventType.INVITATION_EXPIRED, [row.id for row in moved], now=now
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
