"""Recovering work from the rows when a worker died or a message was lost.

The database is the source of truth: a row stuck in ``sending`` past its lease belonged
to a worker that died after claiming it, and a ``queued`` row, a ``pending`` chunk or a
``received`` provider or CRM event that nobody took up lost its message. All are found here and
handed back to the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkAction,
    BulkChunk,
    BulkRun,
    ChunkStatus,
    CrmEvent,
    CrmEventStatus,
    Invitation,
    InvitationStatus,
    ProviderEvent,
    ProviderEventStatus,
    SendFailureCode,
)

from . import dispatch

# Longer than the longest a claim is legitimately held: the bulk actor's 15-minute limit.
DEFAULT_LEASE = timedelta(minutes=20)
# A queued row or pending chunk this much past due has lost its message.
DEFAULT_GRACE = timedelta(minutes=5)
BATCH = 1000


@dataclass
class Recovered:
    """What a recovery pass found: ids to put back on the queue."""

    invitation_ids: list[int] = field(default_factory=list)
    chunk_ids: list[int] = field(default_factory=list)  # invite chunks
    action_chunk_ids: list[int] = field(default_factory=list)  # user-action chunks
    event_ids: list[int] = field(default_factory=list)
    crm_event_ids: list[int] = field(default_factory=list)  # CRM events never taken up
    released_claims: int = 0
    exhausted: list[int] = field(default_factory=list)


def release_expired_claims(
    session: Session, now: datetime, *, lease: timedelta = DEFAULT_LEASE, max_attempts: int
) -> tuple[list[int], list[int]]:
    """Return ``sending`` rows past their lease to ``queued``; (released ids, exhausted ids).

    The send's outcome is unknown (the provider may have taken it), so this is the one
    place a duplicate can come from; the lease keeps it to workers that really died. A row
    already at its last attempt is not sent again: it ends as ``technical_failure``.
    """
    expired = (
        select(Invitation.id, Invitation.attempts)
        .where(
            Invitation.status == InvitationStatus.SENDING,
            Invitation.claimed_at < now - lease,
        )
        .order_by(Invitation.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(expired).all()
    retry = [row.id for row in rows if row.attempts < max_attempts]
    exhausted = [row.id for row in rows if row.attempts >= max_attempts]
    if retry:
        session.execute(
            update(Invitation)
            .where(Invitation.id.in_(retry), Invitation.status == InvitationStatus.SENDING)
            .values(
                status=InvitationStatus.QUEUED,
                claim_token=None,
                token_hash=None,
                next_attempt_at=now,
                failure_code="lease_expired",
                failure_detail="the worker that claimed it stopped before recording the send",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    if exhausted:
        dispatch.fail_claimed(
            session,
            exhausted,
            SendFailureCode.TECHNICAL_FAILURE.value,
            "the claim's lease expired on the last attempt; the outcome is unknown",
            now,
        )
    return retry, exhausted


def lost_messages(
    session: Session, now: datetime, *, grace: timedelta = DEFAULT_GRACE
) -> tuple[list[int], list[tuple[int, BulkAction]]]:
    """Queued invitation ids and (pending chunk id, its run's action) past due by ``grace``."""
    cutoff = now - grace
    invitations = session.scalars(
        select(Invitation.id)
        .where(
            Invitation.status == InvitationStatus.QUEUED,
            Invitation.updated_at < cutoff,
            (Invitation.next_attempt_at.is_(None)) | (Invitation.next_attempt_at < cutoff),
        )
        .order_by(Invitation.id)
        .limit(BATCH)
    ).all()
    chunks = session.execute(
        select(BulkChunk.id, BulkRun.action)
        .join(BulkRun, BulkRun.id == BulkChunk.bulk_run_id)
        .where(BulkChunk.status == ChunkStatus.PENDING, BulkChunk.updated_at < cutoff)
        .order_by(BulkChunk.id)
        .limit(BATCH)
    ).all()
    return list(invitations), [(row.id, row.action) for row in chunks]


def recover(
    session: Session,
    now: datetime,
    *,
    max_attempts: int,
    lease: timedelta = DEFAULT_LEASE,
    grace: timedelta = DEFAULT_GRACE,
) -> Recovered:
    """One recovery pass; the caller commits, then enqueues what it returns."""
    released, exhausted = release_expired_claims(
        session, now, lease=lease, max_attempts=max_attempts
    )
    invitations, chunks = lost_messages(session, now, grace=grace)
    events = session.scalars(
        select(ProviderEvent.id)
        .where(
            ProviderEvent.status == ProviderEventStatus.RECEIVED,
            ProviderEvent.received_at < now - grace,
        )
        .order_by(ProviderEvent.id)
        .limit(BATCH)
    ).all()
    crm_events = session.scalars(
        select(CrmEvent.id)
        .where(
            CrmEvent.status == CrmEventStatus.RECEIVED,
            CrmEvent.received_at < now - grace,
        )
        .order_by(CrmEvent.id)
        .limit(BATCH)
    ).all()
    return Recovered(
        invitation_ids=sorted(set(invitations) | set(released)),
        chunk_ids=[chunk for chunk, action in chunks if action == BulkAction.INVITE],
        action_chunk_ids=[chunk for chunk, action in chunks if action != BulkAction.INVITE],
        event_ids=list(events),
        crm_event_ids=list(crm_events),
        released_claims=len(released),
        exhausted=exhausted,
    )
