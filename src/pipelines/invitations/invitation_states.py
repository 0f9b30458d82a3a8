"""The invitation's state machine, in one place: every status write is a named transition.

    (new) ──enqueue──▶ queued ──claim──▶ sending ──record_sent──▶ sent ──accept──▶ accepted
    (new) ──refuse──▶ failed             sending ──fail──▶ failed          sent ──expire──▶ expired
    (new) ──claim_on_write──▶ sending    sending ──retry_later / give_back──▶ queued
    sending ──extend_claim──▶ sending    (the live claimant moves its deadline)
    sending ──release_lapsed──▶ queued   (recovery: the claim's deadline passed, no receipt)
    sending ──complete_from_receipt──▶ sent   (recovery: the provider had taken it)
    sending ──exhaust──▶ failed          (recovery: lapsed on the last attempt)
    queued / sent ──supersede──▶ superseded   (a newer invitation, a removal, an address change)

A transition is applied set-based: ``move`` builds one UPDATE whose WHERE names the
statuses the transition may leave, so a row that has moved on meanwhile is left alone (the
compare-and-set that makes a redelivered message harmless). Inserts take their first status
from ``initial_status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, literal_column, update

from portalflow.models import Invitation, InvitationStatus

S = InvitationStatus


class Transition(StrEnum):
    ENQUEUE = "enqueue"  # written, waiting for a worker
    REFUSE = "refuse"  # written as refused before any send (a pre-send reason)
    CLAIM_ON_WRITE = "claim_on_write"  # written already claimed by the worker that will send it
    CLAIM = "claim"
    EXTEND_CLAIM = "extend_claim"  # the live claimant moves its deadline; status unchanged
    RECORD_SENT = "record_sent"
    RETRY_LATER = "retry_later"  # a temporary failure: back to the queue with a backoff
    GIVE_BACK = "give_back"  # not ours to finish now (channel paused, claim lapsing): unspent
    FAIL = "fail"
    RELEASE_LAPSED = "release_lapsed"
    COMPLETE_FROM_RECEIPT = "complete_from_receipt"
    EXHAUST = "exhaust"
    SUPERSEDE = "supersede"
    ACCEPT = "accept"
    EXPIRE = "expire"


# transition -> (the statuses it may leave, the status it leads to); None: a new row.
TRANSITIONS: dict[Transition, tuple[tuple[InvitationStatus, ...] | None, InvitationStatus]] = {
    Transition.ENQUEUE: (None, S.QUEUED),
    Transition.REFUSE: (None, S.FAILED),
    Transition.CLAIM_ON_WRITE: (None, S.SENDING),
    Transition.CLAIM: ((S.QUEUED,), S.SENDING),
    Transition.EXTEND_CLAIM: ((S.SENDING,), S.SENDING),
    Transition.RECORD_SENT: ((S.SENDING,), S.SENT),
    Transition.RETRY_LATER: ((S.SENDING,), S.QUEUED),
    Transition.GIVE_BACK: ((S.SENDING,), S.QUEUED),
    Transition.FAIL: ((S.SENDING,), S.FAILED),
    Transition.RELEASE_LAPSED: ((S.SENDING,), S.QUEUED),
    Transition.COMPLETE_FROM_RECEIPT: ((S.SENDING,), S.SENT),
    Transition.EXHAUST: ((S.SENDING,), S.FAILED),
    Transition.SUPERSEDE: ((S.QUEUED, S.SENT), S.SUPERSEDED),
    Transition.ACCEPT: ((S.SENT,), S.ACCEPTED),
    Transition.EXPIRE: ((S.SENT,), S.EXPIRED),
}


def initial_status(transition: Transition) -> InvitationStatus:
    """The status a new row is written with by ``transition`` (one of the (new) ones)."""
    sources, target = TRANSITIONS[transition]
    if sources is not None:
        raise ValueError(f"{transition.value} moves an existing invitation; it writes no new row")
    return target


def sources(transition: Transition) -> tuple[InvitationStatus, ...]:
    """The statuses ``transition`` may leave."""
    leaves, _target = TRANSITIONS[transition]
    if leaves is None:
        raise ValueError(f"{transition.value} writes a new row; it moves no invitation")
    return leaves


def target(transition: Transition) -> InvitationStatus:
    return TRANSITIONS[transition][1]


def allowed_from(status: InvitationStatus) -> list[Transition]:
    """Every transition that may leave ``status`` (for error messages and the docs)."""
    return [t for t, (leaves, _) in TRANSITIONS.items() if leaves and status in leaves]


def has_status(*statuses: InvitationStatus) -> ColumnElement[bool]:
    """``status = 'x'`` with the value written into the SQL, not bound.

    The partial indexes of queued and sending rows are only usable by a plan that can see
    the value (a prepared statement's generic plan cannot see a bound one), and they look
    at ``dispatch_status``, not ``status`` (see ``Invitation``): for those two statuses
    the condition names both.
    """
    values = [InvitationStatus(status).value for status in statuses]
    literals = [literal_column(f"'{value}'") for value in values]
    condition = _one_of(Invitation.status, literals)
    if set(values) <= _DISPATCHING:
        return and_(condition, _one_of(Invitation.dispatch_status, literals))
    return condition


_DISPATCHING = frozenset({S.QUEUED.value, S.SENDING.value})


def _one_of(column: Any, literals: list[Any]) -> ColumnElement[bool]:
    """``column = x`` for one value, ``column IN (...)`` for several."""
    return column == literals[0] if len(literals) == 1 else column.in_(literals)  # type: ignore[no-any-return]


def guard(transition: Transition) -> ColumnElement[bool]:
    """The WHERE clause that keeps ``transition`` to the rows it may move."""
    return has_status(*sources(transition))


def move(
    transition: Transition,
    *where: ColumnElement[bool],
    values: Mapping[str, Any] | None = None,
) -> Update:
    """One set-based UPDATE applying ``transition`` to the rows ``where`` selects.

    The caller adds ``.returning(...)`` when it needs the rows that moved; rows whose status
    the transition may not leave are not touched.
    """
    return (
        update(Invitation)
        .where(guard(transition), *where)
        .values(status=target(transition), **dict(values or {}))
        .execution_options(synchronize_session=False)
    )


def move_ids(
    transition: Transition,
    ids: Iterable[int],
    *where: ColumnElement[bool],
    values: Mapping[str, Any] | None = None,
) -> Update:
    """``move`` over a list of invitation ids."""
    return move(transition, Invitation.id.in_(list(ids)), *where, values=values)
