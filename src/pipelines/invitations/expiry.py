"""The 7-day expiry sweep: ``sent`` invitations past ``expires_at`` become ``expired``.

Set-based and keyset-paginated on ``expires_at``, starting a day before where the last
complete sweep reached (its mark, ``SweepMark``): the index on ``expires_at`` keeps the
entries of rows already expired (expiring a row then touches no index: a HOT update on
PostgreSQL, see ``Invitation``), and the mark keeps a sweep from walking them all again.
Each batch is one UPDATE of up to ``batch_size`` rows picked by a CTE that locks them
(``FOR UPDATE SKIP LOCKED``), then a commit, so a transaction never holds more than one
batch. On PostgreSQL the span is cut into equal spans of time, which ``workers``
connections take in turn and sweep at the same time. Two sweeps at once split the rows
between them and never count one twice (the row locks are skipped, and the UPDATE moves
only rows still ``sent``); a second run finds nothing. SQLite sweeps on the one session it is given.

Tokens are also checked for expiry when used (:mod:`.tokens`), so the sweep only makes
the status visible to admins and reports; it is never what keeps an expired link from
working.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from queue import Empty, SimpleQueue

from sqlalchemy import CTE, Engine, distinct, func, select, text
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, SweepMark, WebhookEventType
from portalflow.pipelines import bulk_sql
from portalflow.pipelines.crm_webhooks import outbox

from .invitation_states import Transition, has_status, move

# A batch's row locks last as long as its transaction: 5,000 rows stay well under a second
# on a busy machine. Larger batches were measured slower: committed batches let the next
# ones prune the old row versions and index entries they left.
DEFAULT_BATCH_SIZE = 5000
# Connections sweeping at once on PostgreSQL; more than the server has cores gains nothing.
DEFAULT_WORKERS = 2
# The span to sweep is cut into this many equal spans of time per connection, taken in
# turn: due rows bunch in time, and a connection that finishes early takes the next span.
SLICES_PER_WORKER = 8
# The sweep's mark (``SweepMark``), and how far before it a sweep looks again.
MARK = "expiry"
LOOK_BACK = timedelta(days=1)


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
    whole_history: bool = False,
) -> ExpirySweep:
    """Expire every ``sent`` invitation with ``expires_at <= now``; commits after each batch.

    An invitation is valid for 7 days: at exactly ``sent_at + 7 days`` it is expired. The
    sweep starts a day before the last complete sweep's mark; ``whole_history`` starts it
    at the earliest expiry instead (rows written with an expiry long past, a restore).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    since = None if whole_history else _look_from(session, now)
    total = _sweep(session, now, since, batch_size, workers)
    _mark(session, now)
    return total


def _sweep(
    session: Session, now: datetime, since: datetime | None, batch_size: int, workers: int
) -> ExpirySweep:
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or workers == 1 or not isinstance(bind, Engine):
        return _sweep_range(session, now, since, None, batch_size)
    if since is None:  # no sweep yet: from the earliest expiry there is (the index's first)
        since = session.scalar(select(func.min(Invitation.expires_at)))
        session.commit()
        if since is None or since > now:
            return ExpirySweep()
    slices: SimpleQueue[tuple[datetime, datetime | None]] = SimpleQueue()
    for piece in _time_slices(since, now, workers * SLICES_PER_WORKER):
        slices.put(piece)
    with ThreadPoolExecutor(workers - 1, thread_name_prefix="expiry") as pool:
        others = [
            pool.submit(_sweep_slices_on_own_session, bind, now, slices, batch_size)
            for _ in range(workers - 1)
        ]
        total = _sweep_slices(session, now, slices, batch_size)
        for other in others:
            total += other.result()
    return total


def _time_slices(
    since: datetime, now: datetime, count: int
) -> list[tuple[datetime, datetime | None]]:
    """``[since, now]`` cut into ``count`` equal spans of time; the last one is open-ended."""
    step = (now - since) / count
    cuts = [since + step * k for k in range(count)]
    return list(pairwise([*cuts, None]))  # type: ignore[list-item]


def _sweep_slices(
    session: Session,
    now: datetime,
    slices: SimpleQueue[tuple[datetime, datetime | None]],
    batch_size: int,
) -> ExpirySweep:
    """Sweep slices taken from ``slices`` until none is left (workers share them out)."""
    total = ExpirySweep()
    while True:
        try:
            low, high = slices.get_nowait()
        except Empty:
            return total
        total += _sweep_range(session, now, low, high, batch_size)


def _sweep_slices_on_own_session(
    engine: Engine,
    now: datetime,
    slices: SimpleQueue[tuple[datetime, datetime | None]],
    batch_size: int,
) -> ExpirySweep:
    with Session(engine) as session:
        return _sweep_slices(session, now, slices, batch_size)


def _look_from(session: Session, now: datetime) -> datetime | None:
    """Where the sweep starts: a day before the last complete sweep (None: the beginning).

    After a sweep at T no sent row is due before T; a row sent later expires after T. The
    day covers clocks that disagree, and a row another transaction held locked when the
    last sweep passed it (it skips locked rows) and then left as it was.
    """
    reached = session.scalar(select(SweepMark.reached).where(SweepMark.name == MARK))
    session.commit()
    return None if reached is None else min(reached, now) - LOOK_BACK


def _mark(session: Session, now: datetime) -> None:
    """The sweep at ``now`` is complete: the next one starts from it."""
    statement = bulk_sql.upsertable_insert(session, SweepMark.__table__)
    statement = statement.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=["name"], set_={"reached": now}
    )
    session.execute(statement, {"name": MARK, "reached": now})
    session.commit()


@dataclass(frozen=True)
class _Expired:
    """One batch's expired rows: their ids and orgs, and the latest expiry among them."""

    ids: list[int]
    org_ids: list[int]
    last_expiry: datetime | None


def _expire(session: Session, batch: CTE, now: datetime, postgres: bool) -> _Expired:
    """Expire the rows ``batch`` picked; on PostgreSQL the answer is one row of arrays."""
    expire = move(Transition.EXPIRE, Invitation.id == batch.c.id, values={"updated_at": now})
    if not postgres:
        rows = session.execute(
            expire.returning(Invitation.id, Invitation.org_id, Invitation.expires_at)
        ).all()
        expiries = [row.expires_at for row in rows]
        org_ids = sorted({row.org_id for row in rows})
        return _Expired([row.id for row in rows], org_ids, max(expiries, default=None))
    # 5,000 rows read back one by one cost the worker more than PostgreSQL's whole UPDATE.
    moved = expire.returning(Invitation.id, Invitation.org_id, Invitation.expires_at).cte("moved")
    ids, org_ids, last = session.execute(
        select(
            func.coalesce(func.array_agg(moved.c.id), text("'{}'")),
            func.coalesce(func.array_agg(distinct(moved.c.org_id)), text("'{}'")),
            func.max(moved.c.expires_at),
        )
    ).one()
    return _Expired(list(ids), list(org_ids), last)


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
        moved = _expire(session, batch, now, postgres)
        outbox.invitation_events(
            session,
            WebhookEventType.INVITATION_EXPIRED,
            moved.ids,
            org_id=moved.org_ids[0] if len(moved.org_ids) == 1 else None,
            now=now,
        )
        session.commit()
        if not moved.ids:
            break
        expired += len(moved.ids)
        batches += 1
        after = moved.last_expiry
        if len(moved.ids) < batch_size:
            break  # a short batch was the last one: no need to ask again
    return ExpirySweep(expired=expired, batches=batches)
