"""Provider receipts: the one write per message, made durable before the next send.

The moment a provider takes a message its id is committed as a narrow ``send_receipts`` row,
so a worker that dies before recording its batch leaves proof of what went out: recovery
completes those rows as sent instead of sending them again, and a crash can duplicate only
the one message a thread had in flight. A database outage does not lose a receipt: the
write is retried until the database is back (for ``RECEIPT_RETRY_SECONDS``); a retry of a
write whose commit did land but whose answer was lost finds its row and leaves it.

On PostgreSQL the INSERT goes straight to the session's driver connection: through the ORM
session the same write cost three times the CPU (statement compilation and a
pooled-connection checkout, with its pre-ping, after every commit). psycopg prepares the
statement after a few uses. The session's transaction holds nothing else at that point
(dispatch commits before every provider call), so the INSERT runs in autocommit, committed
by itself in one round trip; committing underneath the session is safe for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, SendReceipt
from portalflow.pipelines.bulk_sql import among, upsertable_insert
from portalflow.pipelines.invitations.invitation_states import has_status

RECEIPT_RETRY_SECONDS = 60.0
_IDLE = 0  # libpq's PQTRANS_IDLE: connected, no transaction open
_RAW_INSERT = (
    "INSERT INTO send_receipts (invitation_id, claim_token, provider_message_id, sent_at)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


class ReceiptBook:
    """Writes one claim's receipts through a session (one per dispatching thread)."""

    def __init__(self, session: Session, claim_token: str) -> None:
        self.session = session
        self.claim_token = claim_token
        self.writes_raw = session.get_bind().dialect.name == "postgresql"

    def keep(self, invitation_id: int, message_id: str, sent_at: datetime) -> None:
        """Commit that the provider took ``invitation_id``'s message; retried through outages."""
        values = (invitation_id, self.claim_token, message_id, sent_at)
        deadline = time.monotonic() + RECEIPT_RETRY_SECONDS
        delay = 0.1
        while True:
            try:
                self._write(values)
                return
            except (OperationalError, InterfaceError, *_driver_errors(self.session)) as exc:
                self._discard_connection(exc)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _write(self, values: tuple[Any, ...]) -> None:
        if self.writes_raw:
            _write_raw(self.session, values)
            return
        invitation_id, claim_token, message_id, sent_at = values
        self.session.execute(
            upsertable_insert(self.session, SendReceipt)
            .values(
                invitation_id=invitation_id,
                claim_token=claim_token,
                provider_message_id=message_id,
                sent_at=sent_at,
            )
            .on_conflict_do_nothing()
        )
        self.session.commit()

    def _discard_connection(self, exc: BaseException) -> None:
        """Drop a connection that failed under us, so the next try checks out a live one."""
        if self.writes_raw and not isinstance(exc, DBAPIError):
            # The driver raised outside SQLAlchemy: it does not know the connection is bad.
            self.session.connection().invalidate(exc)  # type: ignore[arg-type]
        self.session.rollback()


def _write_raw(session: Session, values: tuple[Any, ...]) -> None:
    driver = session.connection().connection.driver_connection
    assert driver is not None
    if driver.info.transaction_status == _IDLE:
        # Nothing open: the INSERT commits by itself, one round trip instead of three
        # (BEGIN, INSERT, COMMIT), each a wait for the GIL back among busy threads.
        driver.autocommit = True
    try:
        driver.execute(_RAW_INSERT, values)
        driver.commit()  # a no-op after an autocommit INSERT
    finally:
        if driver.autocommit and driver.info.transaction_status == _IDLE:  # else: discarded
            driver.autocommit = False


def _driver_errors(session: Session) -> tuple[type[BaseException], ...]:
    dbapi = session.get_bind().dialect.dbapi
    if dbapi is None:
        return ()
    return (dbapi.OperationalError, dbapi.InterfaceError)


def forget(session: Session, invitation_ids: Sequence[int]) -> None:
    """Drop the receipts of rows whose outcome is now written on the invitation (flushed)."""
    if invitation_ids:
        session.execute(
            delete(SendReceipt).where(among(session, SendReceipt.invitation_id, invitation_ids))
        )


def forget_stale(session: Session) -> int:
    """Drop receipts no claim can use any more (flushed); how many.

    A worker that stalled past its claim may still write a receipt after recovery took the
    row: its claim token no longer matches the row's, so nothing reads it.
    """
    live = exists().where(
        Invitation.id == SendReceipt.invitation_id,
        Invitation.claim_token == SendReceipt.claim_token,
        has_status(InvitationStatus.SENDING),
    )
    return session.execute(delete(SendReceipt).where(~live)).rowcount  # type: ignore[attr-defined]
