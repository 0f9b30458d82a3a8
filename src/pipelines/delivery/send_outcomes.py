"""Recording what came of a batch's sends on its rows, for the rows still under the claim.

Per batch: the outcomes, in one statement per kind of outcome (sent, retried, given back,
failed), for the rows that still carry the claim token; refunds of SMS credits an attempt
took without reaching the provider; run totals; one commit. A lapsing claim gives the
unsent rest of its rows back to the queue, unspent (:func:`give_back`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    Invitation,
    InvitationStatus,
    OutcomeClass,
    SendFailureCode,
    WebhookEventType,
)
from portalflow.pipelines import bulk_sql
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.delivery.channels.base import SendFailure
from portalflow.pipelines.delivery.claims import Claim, ClaimedRow
from portalflow.pipelines.delivery.outcomes import THROTTLED_CODES
from portalflow.pipelines.delivery.retry import backoff_delay, throttled_delay
from portalflow.pipelines.invitations import bulk, suppressions, tokens
from portalflow.pipelines.invitations.invitation_states import Transition, has_status, move_ids

from . import credits, pauses, receipts
from .dispatch_config import DispatchConfig
from .sender import SendOutcome
from .settlement import bump_run_totals, release_failed_users, write_transition


@dataclass
class DispatchResult:
    """What a dispatch did with each id it was given."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # (invitation id, delay) for rows back in the queue that should be sent again.
    retry: list[tuple[int, timedelta]] = field(default_factory=list)
    # Ids that were not ours to send (already claimed, sent, superseded or not yet due).
    skipped: list[int] = field(default_factory=list)
    # Ids given back unsent because their org's channel is misconfigured (now paused).
    paused: list[int] = field(default_factory=list)
    # Ids given back unsent because the claim was lapsing (they are in ``retry`` too).
    given_back: list[int] = field(default_factory=list)


@dataclass
class _Batch:
    """A batch's outcomes sorted by the transition each row takes."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    given_back: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    failed_users: list[int] = field(default_factory=list)
    refunds: dict[int, int] = field(default_factory=dict)  # org id -> credits to give back
    runs: dict[int, dict[str, int]] = field(default_factory=dict)

    def count(self, row: ClaimedRow, column: str) -> None:
        if row.bulk_run_id is not None:
            counts = self.runs.setdefault(row.bulk_run_id, {"sent": 0, "failed": 0})
            counts[column] += 1


def record_batch(
    session: Session,
    claim: Claim,
    outcomes: Sequence[SendOutcome],
    config: DispatchConfig,
    result: DispatchResult,
    at: datetime,
) -> None:
    """Write a batch of outcomes for the rows still under the claim, then commit."""
    if not outcomes:
        return
    ours = set(
        session.scalars(
            select(Invitation.id)
            .where(
                bulk_sql.among(session, Invitation.id, [o.row.id for o in outcomes]),
                Invitation.claim_token == claim.token,
                has_status(InvitationStatus.SENDING),
            )
            .with_for_update()
        )
    )
    batch = _Batch()
    for outcome in outcomes:
        if outcome.row.id not in ours:
            # Recovery took it after a lapse: it settles the row (and any debit on it).
            result.skipped.append(outcome.row.id)
            continue
        _sort(session, outcome, config, batch, result, at)
    common = {"claim_token": None, "claim_deadline": None, "sms_debited": 0, "updated_at": at}
    write_transition(session, Transition.RECORD_SENT, batch.sent, {**common, **_NO_FAILURE})
    for transition, rows in (
        (Transition.RETRY_LATER, batch.retry),
        (Transition.GIVE_BACK, batch.given_back),
        (Transition.FAIL, batch.failed),
    ):
        write_transition(session, transition, rows, common)
    for org_id, amount in batch.refunds.items():
        credits.refund(session, org_id, amount)
    receipts.forget(session, [row["id"] for row in batch.sent])
    outbox.invitations_changed(
        session,
        {
            WebhookEventType.INVITATION_SENT: [row["id"] for row in batch.sent],
            WebhookEventType.INVITATION_FAILED: [row["id"] for row in batch.failed],
        },
        now=at,
    )
    release_failed_users(session, batch.failed_users, at)
    bulk.finish_if_done(session, bump_run_totals(session, batch.runs))
    session.commit()


_NO_FAILURE = {"failure_code": None, "failure_detail": None}


def _sort(
    session: Session,
    outcome: SendOutcome,
    config: DispatchConfig,
    batch: _Batch,
    result: DispatchResult,
    at: datetime,
) -> None:
    """Put one outcome in its transition's list, with the columns it writes."""
    row = outcome.row
    if outcome.failure is None:
        _sort_sent(outcome, batch, result)
        return
    failure = outcome.failure
    if outcome.debited:
        batch.refunds[row.org_id] = batch.refunds.get(row.org_id, 0) + outcome.debited
    _act_on_failure(session, row, failure)
    problem = {"failure_code": failure.code, "failure_detail": failure.detail}
    if failure.outcome_class == OutcomeClass.CONFIGURATION:
        # Our side is broken, not the invitation: give it back without spending the attempt;
        # it goes out when an admin resumes the channel.
        result.paused.append(row.id)
        batch.given_back.append(
            {"id": row.id, "attempts": row.attempts - 1, "next_attempt_at": None}
            | {"token_hash": None, **problem}
        )
        return
    if failure.code in THROTTLED_CODES:
        # Sent too fast for the provider: retried soon, and the attempt is given back.
        delay = throttled_delay()
        result.retry.append((row.id, delay))
        batch.retry.append(
            {"id": row.id, "attempts": row.attempts - 1, "next_attempt_at": at + delay}
            | {"token_hash": None, **problem}
        )
        return
    if failure.temporary and row.attempts < config.max_attempts:
        delay = backoff_delay(row.attempts)
        result.retry.append((row.id, delay))
        batch.retry.append(
            {"id": row.id, "next_attempt_at": at + delay, "token_hash": None, **problem}
        )
        return
    _sort_failed(outcome, failure, problem, batch, result)


def _sort_sent(outcome: SendOutcome, batch: _Batch, result: DispatchResult) -> None:
    """A sent row: its provider message id, and the link's lifetime from the send."""
    row = outcome.row
    assert outcome.sent_at is not None
    result.sent.append(row.id)
    batch.sent.append(
        {
            "id": row.id,
            "provider_message_id": outcome.message_id,
            "sent_at": outcome.sent_at,
            "expires_at": outcome.sent_at + tokens.lifetime(row.kind),
        }
    )
    batch.count(row, "sent")


def _sort_failed(
    outcome: SendOutcome,
    failure: SendFailure,
    problem: dict[str, Any],
    batch: _Batch,
    result: DispatchResult,
) -> None:
    """A row failed for good: a temporary failure out of attempts is ``technical_failure``."""
    row = outcome.row
    result.failed.append(row.id)
    code = SendFailureCode.TECHNICAL_FAILURE.value if failure.temporary else failure.code
    sms = (
        {
            "sms_encoding": outcome.sms.encoding,
            "sms_segments": outcome.sms.segments,
            "dlt_template_id": outcome.dlt_template_id,
        }
        if outcome.sms
        else {}
    )
    batch.failed.append({"id": row.id, "token_hash": None, **problem, "failure_code": code, **sms})
    if row.portal_user_id:
        batch.failed_users.append(row.portal_user_id)
    batch.count(row, "failed")


def give_back(
    session: Session,
    claim: Claim,
    rows: Sequence[ClaimedRow],
    result: DispatchResult,
    at: datetime,
) -> None:
    """Hand the unsent rest of a lapsing claim back to the queue, unspent; commits.

    Rows recovery already took are not ours and are left alone; the rest go back due now,
    and the caller enqueues them (``result.retry``).
    """
    moved = list(
        session.scalars(
            move_ids(
                Transition.GIVE_BACK,
                [row.id for row in rows],
                Invitation.claim_token == claim.token,
                values={
                    "attempts": Invitation.attempts - 1,
                    "claim_token": None,
                    "claim_deadline": None,
                    "token_hash": None,
                    "next_attempt_at": at,
                    "updated_at": at,
                },
            ).returning(Invitation.id)
        )
    )
    session.commit()
    result.given_back.extend(moved)
    result.retry.extend((invitation_id, timedelta(0)) for invitation_id in moved)
    result.skipped.extend(row.id for row in rows if row.id not in set(moved))


def _act_on_failure(session: Session, row: ClaimedRow, failure: SendFailure) -> None:
    """Pause a misconfigured channel; suppress an address the provider refused for good."""
    if (
        failure.outcome_class == OutcomeClass.CONFIGURATION
        and failure.code != SendFailureCode.CHANNEL_PAUSED
    ):
        pauses.pause(session, row.org_id, row.channel, failure.code, failure.detail)
    if failure.suppress and row.address:
        suppressions.suppress(
            session, row.org_id, row.channel, row.address, failure.code, invitation_id=row.id
        )
