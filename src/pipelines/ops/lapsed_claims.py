"""Settling claims past their deadline: complete from the receipt, ask the provider, requeue.

A row stuck in ``sending`` past its claim's deadline belonged to a worker that died (or
stalled) after claiming it. With the provider's receipt it is completed as sent; an SMS
attempt that was debited but left no receipt may or may not have reached the provider, so
when the caller passes the SMS channel's lookup (``sms_lookup``) the provider is asked
before the debit is given back; anything else goes back to the queue as ``lease_expired``.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, SendFailureCode, SendReceipt
from portalflow.pipelines.delivery import credits, settlement
from portalflow.pipelines.delivery.outgoing_sms import SCHEME
from portalflow.pipelines.invitations import tokens
from portalflow.pipelines.invitations.invitation_states import Transition, has_status, move_ids

log = logging.getLogger(__name__)

# For rows claimed before claims carried a deadline: longer than any actor may run.
DEFAULT_LEASE = timedelta(minutes=20)

BATCH = 1000


# (to, since, matches) -> the provider's id of a message to ``to`` created at or after
# ``since`` whose body ``matches``, or None; raises when the provider cannot tell
# (``SmsChannel.find_sent``).
SmsLookup = Callable[[str, datetime, Callable[[str], bool]], str | None]

# The provider's clock is not the workers': ask from this long before the claim.
LOOKUP_SLACK = timedelta(minutes=5)

# Lookups are made holding the rows' locks, so a pass makes at most this many, for at most
# this long; the rows left over stay ``sending`` for the next pass.
MAX_LOOKUPS = 100

LOOKUP_BUDGET_SECONDS = 60.0

# Failures in a row after which the provider is taken to be out of reach for this pass.
LOOKUP_FAILURES_IN_A_ROW = 3

_LINK_CODE = re.compile(re.escape(SCHEME) + r"[^\s/?#]+/([0-9A-Za-z]+)")
_SIGN_IN_CODE = re.compile(rf"(?<![0-9])([0-9]{{{tokens.SIGN_IN_CODE_DIGITS}}})(?![0-9])")


@dataclass
class ReleasedClaims:
    """What became of the ``sending`` rows whose claim outlived its lease."""

    requeued: list[int] = field(default_factory=list)
    exhausted: list[int] = field(default_factory=list)  # ended as technical_failure
    completed: list[int] = field(default_factory=list)  # the provider's receipt was kept
    found: list[int] = field(default_factory=list)  # of completed: found by the SMS lookup
    deferred: list[int] = field(default_factory=list)  # left for the next pass (lookups ran out)


@dataclass(frozen=True)
class _Lapsed:
    """One selected row of a lapsed claim (``message_id``: its receipt, or the lookup's)."""

    id: int
    org_id: int
    attempts: int
    sms_debited: int
    claim_token: str | None
    claimed_at: datetime | None
    address: str | None
    token_hash: str | None
    message_id: str | None
    sent_at: datetime | None


def release_expired_claims(
    session: Session,
    now: datetime,
    *,
    lease: timedelta = DEFAULT_LEASE,
    max_attempts: int,
    sms_lookup: SmsLookup | None = None,
) -> ReleasedClaims:
    """Settle the ``sending`` rows whose claim lapsed: their worker died, or stalled past it.

    A row with the provider's receipt (committed as soon as the provider took it) is
    completed as sent, its SMS debit kept. So is a debited SMS without a receipt that
    ``sms_lookup`` finds at the provider (its worker died between the provider's answer and
    the receipt's commit). Any other row goes back to ``queued`` with its SMS debit given
    back: it was never handed over, or its worker died while handing it over and the
    provider could not be asked, so its outcome is unknown; this is the one place a
    duplicate can come from, one message per dead worker thread at most. A row the worker
    never reached gets its attempt back (see ``_never_tried``); a row that was tried on its
    last attempt is not sent again: it ends as ``technical_failure``. ``lease`` only dates
    claims written before claims carried a deadline.
    """
    rows = _select_lapsed(session, now, lease)
    found: dict[int, str] = {}
    deferred: set[int] = set()
    if sms_lookup is not None:
        found, deferred = _ask_provider(rows, sms_lookup)
        # Found: the provider took it; when is not asked, so it counts as sent now.
        rows = [
            replace(row, message_id=found[row.id], sent_at=now) if row.id in found else row
            for row in rows
        ]
    untried = _never_tried(rows) - deferred
    rows = [row for row in rows if row.id not in deferred]
    received = [row for row in rows if row.message_id is not None]
    unknown = [row for row in rows if row.message_id is None]
    exhausted = [
        row.id for row in unknown if row.attempts >= max_attempts and row.id not in untried
    ]
    retry = [row.id for row in unknown if row.id not in exhausted]
    completed = settlement.complete_from_receipts(session, received, now) if received else []
    _requeue(session, [i for i in retry if i not in untried], untried, now)
    if exhausted:
        settlement.fail_claimed(
            session,
            exhausted,
            SendFailureCode.TECHNICAL_FAILURE.value,
            "the claim's lease expired on the last attempt; the outcome is unknown",
            now,
        )
    refunds: dict[int, int] = {}
    for row in unknown:
        if row.sms_debited:
            refunds[row.org_id] = refunds.get(row.org_id, 0) + row.sms_debited
    for org_id, amount in refunds.items():
        credits.refund(session, org_id, amount)
    return ReleasedClaims(
        retry, exhausted, completed, sorted(found.keys() & set(completed)), sorted(deferred)
    )


def _select_lapsed(session: Session, now: datetime, lease: timedelta) -> list[_Lapsed]:
    """Lock and read a batch of the ``sending`` rows whose claim lapsed, with their receipt."""
    receipt = (
        select(SendReceipt.provider_message_id, SendReceipt.sent_at)
        .where(
            SendReceipt.invitation_id == Invitation.id,
            SendReceipt.claim_token == Invitation.claim_token,
        )
        .correlate(Invitation)
    )
    lapsed = (Invitation.claim_deadline < now) | (
        Invitation.claim_deadline.is_(None) & (Invitation.claimed_at < now - lease)
    )
    expired = (
        select(
            Invitation.id,
            Invitation.org_id,
            Invitation.attempts,
            Invitation.sms_debited,
            Invitation.claim_token,
            Invitation.claimed_at,
            Invitation.address,
            Invitation.token_hash,
            # A receipt kept on the row itself: a claim written before receipts had a table.
            func.coalesce(
                receipt.with_only_columns(SendReceipt.provider_message_id).scalar_subquery(),
                Invitation.provider_message_id,
            ).label("message_id"),
            func.coalesce(
                receipt.with_only_columns(SendReceipt.sent_at).scalar_subquery(),
                Invitation.sent_at,
            ).label("sent_at"),
        )
        .where(has_status(InvitationStatus.SENDING), lapsed)
        .order_by(Invitation.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True, of=Invitation)
    )
    return [_Lapsed(**row._mapping) for row in session.execute(expired)]


def _requeue(session: Session, tried: list[int], untried: set[int], now: datetime) -> None:
    """Put lapsed rows of unknown outcome back in the queue, due now, as ``lease_expired``."""
    released = {
        "claim_token": None,
        "claim_deadline": None,
        "token_hash": None,
        "sms_debited": 0,
        "next_attempt_at": now,
        "failure_code": SendFailureCode.LEASE_EXPIRED.value,
        "failure_detail": "its worker stopped before recording the send",
        "updated_at": now,
    }
    if tried:
        session.execute(move_ids(Transition.RELEASE_LAPSED, tried, values=released))
    if untried:
        # Never tried: the attempt the claim counted is given back.
        session.execute(
            move_ids(
                Transition.RELEASE_LAPSED,
                sorted(untried),
                values={**released, "attempts": Invitation.attempts - 1},
            )
        )


def carries_token(token_hash: str, invitation_id: int | None = None) -> Callable[[str], bool]:
    """A matcher: does a message body hold a short link whose code hashes to ``token_hash``,
    or (a verification SMS of row ``invitation_id``) a sign-in code that does?"""

    def matches(body: str) -> bool:
        if any(
            hmac.compare_digest(tokens.hash_token(code), token_hash)
            for code in _LINK_CODE.findall(body)
        ):
            return True
        return invitation_id is not None and any(
            hmac.compare_digest(tokens.sign_in_code_hash(invitation_id, code), token_hash)
            for code in _SIGN_IN_CODE.findall(body)
        )

    return matches


def _ask_provider(rows: Sequence[_Lapsed], lookup: SmsLookup) -> tuple[dict[int, str], set[int]]:
    """Ask the SMS provider about each debited attempt without a receipt.

    Returns (row id -> the provider's message id, for those it holds; the ids left unasked
    for the next pass). A row whose lookup failed is in neither: its outcome stays unknown.
    Only ids and the kind of failure are logged, never a number or a body.
    """
    asked = [
        row
        for row in rows
        if row.message_id is None
        and row.sms_debited > 0
        and row.address
        and row.token_hash
        and row.claimed_at is not None
    ]
    found: dict[int, str] = {}
    failures = Counter[str]()
    in_a_row = 0
    started = time.monotonic()
    for index, row in enumerate(asked):
        if index >= MAX_LOOKUPS or time.monotonic() - started > LOOKUP_BUDGET_SECONDS:
            deferred = {later.id for later in asked[index:]}
            log.info("SMS lookups: %d lapsed attempts left for the next pass", len(deferred))
            return found, deferred
        if in_a_row >= LOOKUP_FAILURES_IN_A_ROW:
            failures["not asked: the provider was out of reach"] += 1
            continue
        assert row.address and row.token_hash and row.claimed_at is not None
        try:
            message_id = lookup(
                row.address, row.claimed_at - LOOKUP_SLACK, carries_token(row.token_hash, row.id)
            )
        except Exception as exc:
            in_a_row += 1
            failures[type(exc).__name__] += 1
            continue
        in_a_row = 0
        if message_id is not None:
            found[row.id] = message_id
    if failures:
        log.warning(
            "SMS lookups failed for %d lapsed attempts (%s); their debits are given back and"
            " they are sent again",
            sum(failures.values()),
            ", ".join(f"{kind}: {count}" for kind, count in sorted(failures.items())),
        )
    return found, set()


def _never_tried(rows: Sequence[_Lapsed]) -> set[int]:
    """The lapsed rows their worker never reached (their attempt was not spent).

    A claim's rows are sent in id order and each send's receipt is committed before the
    next begins, so past the last row with a receipt only the first row without one can
    have been in the provider's hands; the rows after it were not tried. An SMS debit is
    proof of a try (one the provider refused leaves a debit and no receipt).
    """
    by_claim: dict[str | None, list[_Lapsed]] = {}
    for row in rows:
        by_claim.setdefault(row.claim_token, []).append(row)
    untried: set[int] = set()
    for claim_token, claimed in by_claim.items():
        if claim_token is None:
            continue
        last_receipt = max((row.id for row in claimed if row.message_id is not None), default=0)
        after = sorted(
            row.id for row in claimed if row.message_id is None and row.id > last_receipt
        )
        untried.update(after[1:])
    return untried - {row.id for row in rows if row.sms_debited > 0}
