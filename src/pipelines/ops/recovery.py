"""Recovering work from the rows when a worker died or a message was lost.

The database is the source of truth: a row stuck in ``sending`` past its lease belonged
to a worker that died after claiming it (settled by :mod:`.lapsed_claims`), and a
``queued`` row, a ``pending`` chunk or a ``received`` provider or CRM event that nobody took
up lost its message. All are found here and handed back to the queue.
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
)
from portalflow.pipelines.delivery import receipts
from portalflow.pipelines.invitations.invitation_states import has_status

from .lapsed_claims import BATCH, DEFAULT_LEASE, SmsLookup, release_expired_claims

# A queued row or pending chunk this much past due has lost its message.
DEFAULT_GRACE = timedelta(minutes=5)


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
    completed: list[int] = field(default_factory=list)  # dead claims the provider had taken
    # Of ``completed``: SMS without a receipt that the provider said it had taken.
    found_at_provider: list[int] = field(default_factory=list)


def lost_messages(
    session: Session, now: datetime, *, grace: timedelta = DEFAULT_GRACE
) -> tuple[list[int], list[tuple[int, BulkAction]]]:
    """Work whose message is lost: queued invitation ids and (chunk id, its run's action).

    A lost queued row of a bulk chunk comes back as its chunk: one ``bulk_invite`` sends the
    chunk's due rows in batches over one connection, where a message per row would send them
    one at a time. What is returned is touched (``updated_at``), so that a replay which is
    merely slow to be taken up is not enqueued again by every pass until it is.
    """
    cutoff = now - grace
    lost = (
        has_status(InvitationStatus.QUEUED),
        Invitation.updated_at < cutoff,
        (Invitation.next_attempt_at.is_(None)) | (Invitation.next_attempt_at < cutoff),
    )
    invitations = list(
        session.scalars(
            select(Invitation.id)
            .where(*lost, Invitation.bulk_chunk_id.is_(None))
            .order_by(Invitation.id)
            .limit(BATCH)
        )
    )
    with_lost_rows = select(Invitation.bulk_chunk_id).where(
        *lost, Invitation.bulk_chunk_id.is_not(None)
    )
    chunks = session.execute(
        select(BulkChunk.id, BulkRun.action)
        .join(BulkRun, BulkRun.id == BulkChunk.bulk_run_id)
        .where(
            BulkChunk.updated_at < cutoff,
            (BulkChunk.status == ChunkStatus.PENDING) | BulkChunk.id.in_(with_lost_rows),
        )
        .order_by(BulkChunk.id)
        .limit(BATCH)
    ).all()
    _touch(session, invitations, [row.id for row in chunks], now)
    return invitations, [(row.id, row.action) for row in chunks]


def _touch(session: Session, invitation_ids: list[int], chunk_ids: list[int], at: datetime) -> None:
    """Mark replayed work as touched, skipping rows a worker holds (it is taken up already).

    Never waiting on a row lock here keeps this pass out of lock cycles with chunk
    expansion, which locks its chunk, then the user type, then the run.
    """
    if invitation_ids:
        free = (
            select(Invitation.id)
            .where(Invitation.id.in_(invitation_ids), Invitation.status == InvitationStatus.QUEUED)
            .with_for_update(skip_locked=True)
        )
        session.execute(
            update(Invitation)
            .where(Invitation.id.in_(free))
            .values(updated_at=at)
            .execution_options(synchronize_session=False)
        )
    if chunk_ids:
        free = (
            select(BulkChunk.id)
            .where(BulkChunk.id.in_(chunk_ids))
            .with_for_update(skip_locked=True)
        )
        session.execute(
            update(BulkChunk)
            .where(BulkChunk.id.in_(free))
            .values(updated_at=at)
            .execution_options(synchronize_session=False)
        )


def recover(
    session: Session,
    now: datetime,
    *,
    max_attempts: int,
    lease: timedelta = DEFAULT_LEASE,
    grace: timedelta = DEFAULT_GRACE,
    sms_lookup: SmsLookup | None = None,
) -> Recovered:
    """One recovery pass; the caller commits, then enqueues what it returns.

    ``sms_lookup`` (the SMS channel's ``find_sent``) is asked about debited SMS attempts whose
    receipt died with their worker; without it their debit is given back and they go again.
    """
    claims = release_expired_claims(
        session, now, lease=lease, max_attempts=max_attempts, sms_lookup=sms_lookup
    )
    released = claims.requeued
    receipts.forget_stale(session)
    invitations, chunks = lost_messages(session, now, grace=grace)
    # A released row of a bulk chunk goes back with its chunk, like a lost one.
    released_rows = (
        session.execute(
            select(Invitation.id, Invitation.bulk_chunk_id).where(Invitation.id.in_(released))
        ).all()
        if released
        else []
    )
    invite_chunks = {chunk for chunk, action in chunks if action == BulkAction.INVITE}
    invite_chunks |= {row.bulk_chunk_id for row in released_rows if row.bulk_chunk_id}
    invitations += [row.id for row in released_rows if row.bulk_chunk_id is None]
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
        invitation_ids=sorted(set(invitations)),
        chunk_ids=sorted(invite_chunks),
        action_chunk_ids=[chunk for chunk, action in chunks if action != BulkAction.INVITE],
        event_ids=list(events),
        crm_event_ids=list(crm_events),
        released_claims=len(released),
        exhausted=claims.exhausted,
        completed=claims.completed,
        found_at_provider=claims.found,
    )
