"""Dispatching invitations: claim the rows, send each under the claim, record each batch.

Claim before you send: a row is sent only under a claim (see ``claims``), written either
when the row is (a bulk chunk's rows are inserted already claimed: :func:`claim_on_write`)
or by a compare-and-set UPDATE ``queued -> sending`` (:func:`claim_queued`), and committed
before any provider call, so a redelivered or duplicated message finds nothing left to
claim. Before each provider call the claim's deadline is checked on the local clock; a
lapsing claim gives its rest back.

Per message (``sender``): render, build and check (any error fails that invitation alone,
with ``render_failed``, or ``template_too_slow`` / ``template_too_large`` past a render
bound); for SMS, debit the credits and note the debit on the row (one commit); call the
provider; commit its receipt (``receipts``). Per batch of ``OUTCOME_BATCH``
(``send_outcomes``): the outcomes, in one statement per kind of outcome, for the rows still
under the claim; run totals (``settlement``); commit. Every status write is a transition of
``invitation_states``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    RECORD_VALUE_COLUMNS,
    Channel,
    CrmRecord,
    EmailKind,
    Invitation,
    RecordValues,
    utcnow,
)
from portalflow.pipelines import bulk_sql
from portalflow.pipelines.invitations import chunk_rows, tokens
from portalflow.pipelines.invitations.invitation_states import Transition, move

from . import pauses
from .channels.bundle import Channels
from .claims import Claim, ClaimedRow
from .dispatch_config import DispatchConfig, short_link_domain
from .outgoing_sms import short_code_length
from .receipts import ReceiptBook
from .send_outcomes import DispatchResult, give_back, record_batch
from .sender import Sender, SendOutcome

# Outcomes are written, and queued rows claimed, this many at a time: bigger is cheaper;
# the rows of a batch stay ``sending`` until it is written (recovery settles a dead
# worker's from their receipts).
OUTCOME_BATCH = 100


def dispatch(
    session: Session,
    invitation_ids: Sequence[int],
    *,
    channels: Channels,
    config: DispatchConfig,
    now: Callable[[], datetime] = utcnow,
    result: DispatchResult | None = None,
) -> DispatchResult:
    """Claim and send every queued, due invitation of ``invitation_ids``; commits as it goes."""
    result = result if result is not None else DispatchResult()
    for start in range(0, len(invitation_ids), OUTCOME_BATCH):
        batch = invitation_ids[start : start + OUTCOME_BATCH]
        claim = claim_queued(session, batch, config, now())
        claimed = {row.id for row in claim.rows}
        result.skipped.extend(i for i in batch if i not in claimed)
        if claim.rows:
            send_claim(session, claim, channels=channels, config=config, now=now, result=result)
    return result


def claim_on_write(session: Session, config: DispatchConfig) -> chunk_rows.ClaimOnWrite:
    """A fresh claim for rows a bulk chunk writes already claimed (see ``bulk.expand_chunk``)."""
    claim, _deadline = Claim.begin(config.lease)  # restarted when the rows are written
    return chunk_rows.ClaimOnWrite(claim, TokenIssuer(session, config).issue)


def claim_queued(
    session: Session, invitation_ids: Sequence[int], config: DispatchConfig, at: datetime
) -> Claim:
    """Claim the due, queued rows of ``invitation_ids`` with fresh tokens; commits."""
    claim, deadline = Claim.begin(config.lease)
    rows = claim_due(session, invitation_ids, claim.token, deadline, at)
    if not rows:
        session.commit()
        return claim
    records = _record_values(session, [row.record_id for row in rows if row.record_id])
    tokens_by_org = TokenIssuer(session, config)
    claim.rows = [
        ClaimedRow(
            id=row.id,
            org_id=row.org_id,
            user_type_id=row.user_type_id,
            channel=row.channel,
            kind=row.kind,
            language=row.language,
            address=row.address,
            invited_by_id=row.invited_by_id,
            attempts=row.attempts,
            bulk_run_id=row.bulk_run_id,
            portal_user_id=row.portal_user_id,
            record=records.get(row.record_id) if row.record_id else None,
            token="",
        )
        for row in sorted(rows, key=lambda row: row.id)
    ]
    hashes = []
    for claimed in claim.rows:
        claimed.token, digest = tokens_by_org.issue(
            claimed.org_id, claimed.channel, claimed.kind, claimed.id
        )
        hashes.append({"id": claimed.id, "token_hash": digest})
    bulk_sql.update_rows(session, _INVITATIONS, hashes, key="id")
    session.commit()
    return claim


def claim_due(
    session: Session, invitation_ids: Sequence[int], token: str, deadline: datetime, at: datetime
) -> list[Any]:
    """The claim's compare-and-set: due, queued, unpaused rows become ``sending`` under
    ``token`` (not committed); returns the claimed rows' columns."""
    if not invitation_ids:
        return []
    return list(
        session.execute(
            move(
                Transition.CLAIM,
                bulk_sql.among(session, Invitation.id, invitation_ids),
                (Invitation.next_attempt_at.is_(None)) | (Invitation.next_attempt_at <= at),
                pauses.not_paused(),
                values={
                    "claim_token": token,
                    "claimed_at": at,
                    "claim_deadline": deadline,
                    "attempts": Invitation.attempts + 1,
                    "updated_at": at,
                },
            ).returning(*_CLAIMED_COLUMNS)
        ).all()
    )


_CLAIMED_COLUMNS = (
    Invitation.id,
    Invitation.org_id,
    Invitation.user_type_id,
    Invitation.channel,
    Invitation.kind,
    Invitation.language,
    Invitation.address,
    Invitation.invited_by_id,
    Invitation.attempts,
    Invitation.bulk_run_id,
    Invitation.portal_user_id,
    Invitation.record_id,
)


_INVITATIONS = Invitation.__table__


def _record_values(session: Session, record_ids: Sequence[int]) -> dict[int, RecordValues]:
    if not record_ids:
        return {}
    rows = session.execute(
        select(*RECORD_VALUE_COLUMNS).where(CrmRecord.id.in_(list(set(record_ids))))
    )
    return {values.id: values for values in (RecordValues(*row) for row in rows)}


class TokenIssuer:
    """Fresh tokens for claimed rows: 256-bit for email links, the longest short-link code
    that fits a DLT variable (30 characters by default) for SMS links, 6 digits for a
    sign-in code (hashed with its row id)."""

    def __init__(self, session: Session, config: DispatchConfig) -> None:
        self.session = session
        self.config = config
        self.code_lengths: dict[int, int] = {}

    def issue(
        self,
        org_id: int,
        channel: Channel,
        kind: EmailKind = EmailKind.ACCEPT_INVITATION,
        row_id: int = 0,
    ) -> tuple[str, str]:
        """(plain token, SHA-256 hash to store)."""
        if kind == EmailKind.SIGN_IN_CODE:
            return tokens.new_sign_in_code(row_id)
        if channel != Channel.SMS:
            return tokens.new_token()
        if org_id not in self.code_lengths:
            domain = short_link_domain(self.session, org_id, self.config)
            self.code_lengths[org_id] = short_code_length(domain, self.config.variable_limits)
        return tokens.new_short_code(self.code_lengths[org_id])


def send_claim(
    session: Session,
    claim: Claim,
    *,
    channels: Channels,
    config: DispatchConfig,
    now: Callable[[], datetime] = utcnow,
    result: DispatchResult | None = None,
) -> DispatchResult:
    """Send the rows of a committed claim, recording outcomes a batch at a time; commits."""
    result = result if result is not None else DispatchResult()
    sender = Sender(session, channels, config, claim)
    book = ReceiptBook(session, claim.token)
    rows = claim.rows
    pending: list[SendOutcome] = []
    for index, row in enumerate(rows):
        if claim.due_for_extension():
            claim.extend(session, [o.row.id for o in pending] + [r.id for r in rows[index:]])
        outcome = sender.send(row, now) if claim.holds() else SendOutcome(row, fenced=True)
        if outcome.fenced:
            record_batch(session, claim, pending, config, result, now())
            give_back(session, claim, rows[index:], result, now())
            return result
        if outcome.message_id is not None:
            assert outcome.sent_at is not None
            book.keep(row.id, outcome.message_id, outcome.sent_at)
        pending.append(outcome)
        if len(pending) >= OUTCOME_BATCH:
            record_batch(session, claim, pending, config, result, now())
            pending = []
    record_batch(session, claim, pending, config, result, now())
    return result
