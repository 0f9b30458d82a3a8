"""Claims on invitation rows: who may send them, until when, and the fence before each send.

A claim is a random token written on the rows it covers with a deadline (``claim_deadline``,
claim time + the lease). Recovery hands ``sending`` rows whose deadline has passed to
another worker. The live worker keeps its claim: it extends the deadline of the rows it
still holds before the deadline comes near, and before every provider call it checks on its
own clock, with no database round trip, that the deadline is still ahead by a margin. A
worker that was paused, or slowed past its lease, finds its claim lapsing and gives the rest
of its rows back instead of sending what someone else may already be sending.

The local deadline is taken from ``time.monotonic()`` before the statement that writes the
database deadline, so it is never later than the one recovery reads; the margin covers the
clock difference between this machine and recovery's, and one provider call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from portalflow.models import Channel, EmailKind, Invitation, RecordValues, utcnow
from portalflow.pipelines.invitations.invitation_states import Transition, move_ids


@dataclass(frozen=True)
class Lease:
    """How long a claim holds, and how far ahead of its deadline sending must stop."""

    seconds: float
    margin_seconds: float

    def __post_init__(self) -> None:
        # Past half the lease the worker extends; the margin must leave it room to.
        object.__setattr__(self, "margin_seconds", min(self.margin_seconds, self.seconds / 2))

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.seconds)


DEFAULT_LEASE = Lease(seconds=300, margin_seconds=30)


@dataclass(slots=True)
class ClaimedRow:
    """One claimed invitation, as plain values: what its send needs, nothing more."""

    id: int
    org_id: int
    user_type_id: int
    channel: Channel
    kind: EmailKind
    language: str
    address: str | None
    invited_by_id: int | None
    attempts: int  # including the attempt under way
    bulk_run_id: int | None
    portal_user_id: int | None
    record: RecordValues | None
    token: str  # the plain token of this attempt; only its hash is stored


@dataclass
class Claim:
    """Rows claimed under one token, and the local clock's view of their deadline."""

    token: str
    lease: Lease
    deadline: float  # time.monotonic() by which the claim lapses
    rows: list[ClaimedRow] = field(default_factory=list)
    lapsed: bool = False  # set once the claim was found not to hold any more

    @classmethod
    def begin(cls, lease: Lease) -> tuple[Claim, datetime]:
        """A fresh claim, and the deadline to write on its rows (taken after the local one)."""
        local = time.monotonic() + lease.seconds
        return cls(uuid.uuid4().hex, lease, local), utcnow() + lease.duration

    def restart(self) -> datetime:
        """Start the lease now (rows about to be written); the deadline to write on them."""
        self.deadline = time.monotonic() + self.lease.seconds
        return utcnow() + self.lease.duration

    def holds(self) -> bool:
        """May this worker still call a provider for the claim's rows? (no round trip)"""
        return not self.lapsed and time.monotonic() < self.deadline - self.lease.margin_seconds

    def due_for_extension(self) -> bool:
        return time.monotonic() > self.deadline - self.lease.seconds / 2

    def extend(self, session: Session, row_ids: Sequence[int]) -> bool:
        """Move the deadline of ``row_ids`` (still ours, still sending) a lease ahead; commits.

        False, and the claim marked lapsed, when any of them is no longer ours: recovery took
        it, so the rest must not be sent either.
        """
        if not self.holds():
            self.lapsed = True
            return False
        started = time.monotonic()
        moved = session.execute(
            move_ids(
                Transition.EXTEND_CLAIM,
                row_ids,
                Invitation.claim_token == self.token,
                values={"claim_deadline": utcnow() + self.lease.duration},
            )
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
        if moved != len(row_ids):
            self.lapsed = True
            return False
        self.deadline = started + self.lease.seconds
        return True
