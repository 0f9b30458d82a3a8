"""The receipt write: committed by itself, repeatable, and leaving the session transactional."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.models import Invitation, SendReceipt, utcnow
from portalflow.pipelines.delivery.receipts import ReceiptBook

from .test_dispatch_core import expand_claimed, invite


def _receipts(factory: sessionmaker[Session]) -> list[tuple[int, str]]:
    """What another connection sees: only committed receipts."""
    with factory() as other:
        rows = other.execute(select(SendReceipt.invitation_id, SendReceipt.provider_message_id))
        return sorted((row[0], row[1]) for row in rows)


def test_a_receipt_is_committed_at_once_and_a_repeat_is_harmless(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    _run_id, [chunk_id] = invite(session, 2)
    claim = expand_claimed(session, chunk_id).claim
    first, second = (row.id for row in claim.rows)
    book = ReceiptBook(session, claim.token)

    book.keep(first, "<one@zylker>", utcnow())
    assert _receipts(session_factory) == [(first, "<one@zylker>")]
    # A retry after a commit whose answer was lost: the row is there, nothing is raised.
    book.keep(first, "<one@zylker>", utcnow())
    book.keep(second, "<two@zylker>", utcnow())

    assert _receipts(session_factory) == [(first, "<one@zylker>"), (second, "<two@zylker>")]


def test_the_session_is_transactional_again_after_a_receipt(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    _run_id, [chunk_id] = invite(session, 1)
    claim = expand_claimed(session, chunk_id).claim
    [row] = claim.rows
    ReceiptBook(session, claim.token).keep(row.id, "<one@zylker>", utcnow())

    invitation = session.get_one(Invitation, row.id)
    invitation.attempts = 41
    session.flush()
    session.rollback()  # undone: the receipt's write left no autocommit behind

    with session_factory() as other:
        assert other.get_one(Invitation, row.id).attempts != 41
        assert other.scalar(select(func.count()).select_from(SendReceipt)) == 1
