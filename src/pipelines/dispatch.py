"""Sending claimed invitations: fence, send, keep the receipt, record each batch's outcomes.

Claim before you send: a row is sent only under a claim (see ``claims``), written either
when the row is (a bulk chunk's rows are inserted already claimed) or by a compare-and-set
UPDATE ``queued -> sending`` (``dispatch``), and committed before any provider call, so a
redelivered or duplicated message finds nothing left to claim. Before each provider call the
claim's deadline is checked on the local clock; a lapsing claim gives its rest back.

Per message: render, build and check (any error fails that invitation alone, with
``render_failed``, or ``template_too_slow`` / ``template_too_large`` past a render bound);
for SMS, debit the credits and note the debit on the row (one commit); call the provider;
commit its receipt (``receipts``). Per batch of ``OUTCOME_BATCH``: the outcomes, in one
statement per kind of outcome, for the rows still under the claim; run totals; commit.
Every status write is a transition of ``invitation_states``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    RECORD_VALUE_COLUMNS,
    BulkRun,
    Channel,
    CrmRecord,
    CrmUser,
    DataCentre,
    Invitation,
    InvitationStatus,
    Org,
    OutcomeClass,
    PortalUserStatus,
    PortalUserType,
    RecordValues,
    SendFailureCode,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm_webhooks import outbox

from . import bulk, bulk_sql, credits, lifecycle, pauses, receipts, suppressions, tokens
from .channels.base import OutgoingEmail, SendFailure, describe_error
from .channels.bundle import Channels
from .claims import DEFAULT_LEASE, Claim, ClaimedRow, Lease
from .invitation_states import Transition, guard, has_status, move, move_ids, target
from .outcomes import THROTTLED_CODES
from .outgoing_email import DEFAULT_FROM, EmailBuilder
from .outgoing_sms import PreparedSms, SmsBuilder, short_code_length, short_link
from .receipts import ReceiptBook
from .render_limits import TemplateLimitExceeded
from .retry import backoff_delay, throttled_delay
from .sms_text import CheckedSms

# Outcomes are written, and queued rows claimed, this many at a time: bigger is cheaper;
# the rows of a batch stay ``sending`` until it is written (recovery settles a dead
# worker's from their receipts).
OUTCOME_BATCH = 100
CHANNEL_PAUSED = "channel_paused"
DEFAULT_VARIABLE_LIMITS = {"var": 30}
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class DispatchConfig:
    """What a dispatch needs from the settings, as plain values."""

    portal_base_url: str
    max_attempts: int = 5
    default_from: str = DEFAULT_FROM
    # Data centre -> whitelisted short-link domain for SMS links.
    short_link_domains: Mapping[str, str] = field(
        default_factory=lambda: {dc.value: f"{dc.value}.zcrm.to" for dc in DataCentre}
    )
    variable_limits: Mapping[str, int] = field(default_factory=lambda: DEFAULT_VARIABLE_LIMITS)
    lease: Lease = DEFAULT_LEASE
    # Signs each email's opt-out link (``link_keys.link_key``); None: emails carry none.
    link_key: bytes | None = None


@dataclass
class DispatchResult:
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


@dataclass(slots=True)
class _Outcome:
    row: ClaimedRow
    message_id: str | None = None
    sent_at: datetime | None = None
    failure: SendFailure | None = None
    sms: CheckedSms | None = None
    dlt_template_id: str | None = None
    debited: int = 0  # SMS credits taken for this attempt
    fenced: bool = False  # not sent: the claim no longer held at the provider call


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


def claim_on_write(session: Session, config: DispatchConfig) -> bulk.ClaimOnWrite:
    """A fresh claim for rows a bulk chunk writes already claimed (see ``bulk.expand_chunk``)."""
    claim, _deadline = Claim.begin(config.lease)  # restarted when the rows are written
    return bulk.ClaimOnWrite(claim, TokenIssuer(session, config).issue)


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
        claimed.token, digest = tokens_by_org.issue(claimed.org_id, claimed.channel)
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
    that fits a DLT variable (30 characters by default) for SMS links."""

    def __init__(self, session: Session, config: DispatchConfig) -> None:
        self.session = session
        self.config = config
        self.code_lengths: dict[int, int] = {}

    def issue(self, org_id: int, channel: Channel) -> tuple[str, str]:
        """(plain token, SHA-256 hash to store)."""
        if channel != Channel.SMS:
            return tokens.new_token()
        if org_id not in self.code_lengths:
            domain = short_link_domain(self.session, org_id, self.config)
            self.code_lengths[org_id] = short_code_length(domain, self.config.variable_limits)
        return tokens.new_short_code(self.code_lengths[org_id])


def short_link_domain(session: Session, org_id: int, config: DispatchConfig) -> str:
    data_centre = session.get_one(Org, org_id).data_centre
    return config.short_link_domains.get(data_centre.value, f"{data_centre.value}.zcrm.to")


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
    sender = _Sender(session, channels, config, claim)
    book = ReceiptBook(session, claim.token)
    rows = claim.rows
    pending: list[_Outcome] = []
    for index, row in enumerate(rows):
        if claim.due_for_extension():
            claim.extend(session, [o.row.id for o in pending] + [r.id for r in rows[index:]])
        outcome = sender.send(row, now) if claim.holds() else _Outcome(row, fenced=True)
        if outcome.fenced:
            _record(session, claim, pending, config, result, now())
            _give_back(session, claim, rows[index:], result, now())
            return result
        if outcome.message_id is not None:
            assert outcome.sent_at is not None
            book.keep(row.id, outcome.message_id, outcome.sent_at)
        pending.append(outcome)
        if len(pending) >= OUTCOME_BATCH:
            _record(session, claim, pending, config, result, now())
            pending = []
    _record(session, claim, pending, config, result, now())
    return result


class _Sender:
    """Sends one claimed row at a time through its channel, caching per-dispatch lookups.

    ``send`` never raises for one message's trouble: whatever goes wrong is that row's
    outcome, so the rest of its batch goes on.
    """

    def __init__(
        self, session: Session, channels: Channels, config: DispatchConfig, claim: Claim
    ) -> None:
        self.session = session
        self.channels = channels
        self.config = config
        self.claim = claim
        self.emails = EmailBuilder(
            session, config.portal_base_url, config.default_from, link_key=config.link_key
        )
        self.texts = SmsBuilder(session, config.variable_limits)
        # Strong references: the session's identity map alone would let these be collected.
        self.orgs: dict[int, Org] = {}
        self.user_types: dict[int, PortalUserType] = {}
        self.inviters: dict[int, CrmUser | None] = {}
        self.link_domains: dict[int, str] = {}
        # (org, channel) found misconfigured during this dispatch: nothing more goes out.
        self.misconfigured: set[tuple[int, Channel]] = set()

    def send(self, row: ClaimedRow, now: Callable[[], datetime]) -> _Outcome:
        outcome = _Outcome(row)
        route = (row.org_id, row.channel)
        try:
            if row.channel == Channel.SMS:
                prepared = self._prepare_sms(row, outcome)
                if not self._debit(row, prepared, outcome):
                    return outcome
                if not self.claim.holds():
                    return self._fenced(outcome)
                outcome.message_id = self._call(lambda: self.channels.sms.send(prepared.sms))
            else:
                email = self._prepare_email(row)
                if not self.claim.holds():
                    return self._fenced(outcome)
                outcome.message_id = self._call(lambda: self.channels.email.send(email))
        except SendFailure as failure:
            outcome.failure = failure
            if failure.outcome_class == OutcomeClass.CONFIGURATION:
                self.misconfigured.add(route)
            return outcome
        outcome.sent_at = now()
        return outcome

    def _fenced(self, outcome: _Outcome) -> _Outcome:
        outcome.fenced = True
        return outcome

    def _org(self, row: ClaimedRow) -> Org:
        org = _cached(self.orgs, row.org_id, lambda key: self.session.get_one(Org, key))
        if (row.org_id, row.channel) in self.misconfigured:
            raise SendFailure(
                CHANNEL_PAUSED,
                f"the {row.channel.value} channel failed with a configuration error",
                temporary=False,
                outcome_class=OutcomeClass.CONFIGURATION,
            )
        if org.portal is None or row.record is None or not row.address:
            raise SendFailure(
                SendFailureCode.PROVIDER_REJECTED.value,
                "the invitation lost its portal, record or address before the send",
                temporary=False,
            )
        return org

    def _prepare_email(self, row: ClaimedRow) -> OutgoingEmail:
        org = self._org(row)
        assert row.record is not None
        with _render_failures():
            user_type = _cached(
                self.user_types,
                row.user_type_id,
                lambda key: self.session.get_one(PortalUserType, key),
            )
            inviter = _cached(
                self.inviters,
                row.invited_by_id or 0,
                lambda key: self.session.get(CrmUser, key),
            )
            return self.emails.build(row, row.record, org, user_type, inviter, row.token)

    def _prepare_sms(self, row: ClaimedRow, outcome: _Outcome) -> PreparedSms:
        org = self._org(row)
        assert row.record is not None
        with _render_failures():
            domain = _cached(
                self.link_domains,
                org.id,
                lambda key: short_link_domain(self.session, key, self.config),
            )
            prepared = self.texts.build(row, row.record, org, short_link(domain, row.token))
        outcome.sms = prepared.checked
        outcome.dlt_template_id = prepared.sms.dlt_template_id
        return prepared

    def _debit(self, row: ClaimedRow, prepared: PreparedSms, outcome: _Outcome) -> bool:
        """Take the credits and note them, and the message's size, on the row; commits.

        The debit is durable before the provider call, so a crash cannot send for free, and
        it is on the row, so whoever settles the attempt (this worker, or recovery after a
        crash) gives back exactly what an attempt that never reached the provider took.
        False when the row is no longer ours (nothing is taken then).
        """
        segments = prepared.checked.segments
        if not credits.debit(self.session, row.org_id, segments):
            self.session.rollback()
            raise SendFailure(
                SendFailureCode.INSUFFICIENT_SMS_CREDITS.value,
                f"{self.orgs[row.org_id].name} has fewer than {segments} SMS credits left",
                temporary=False,
            )
        noted = self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == row.id,
                Invitation.claim_token == self.claim.token,
                has_status(InvitationStatus.SENDING),
            )
            .values(
                sms_debited=segments,
                sms_segments=segments,
                sms_encoding=prepared.checked.encoding,
                dlt_template_id=prepared.sms.dlt_template_id,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if noted != 1:
            self.session.rollback()
            self.claim.lapsed = True
            outcome.fenced = True
            return False
        self.session.commit()
        outcome.debited = segments
        return True

    @staticmethod
    def _call(send: Callable[[], str]) -> str:
        """The provider call; an error the channel does not classify is a temporary failure."""
        try:
            return send()
        except SendFailure:
            raise
        except Exception as exc:
            raise SendFailure(
                SendFailureCode.SEND_ERROR.value, describe_error(exc)[:1000], temporary=True
            ) from exc


@contextmanager
def _render_failures() -> Iterator[None]:
    """Turn any error while rendering, building or checking one message into its failure."""
    try:
        yield
    except SendFailure:
        raise
    except TemplateLimitExceeded as exc:  # a render past its time or size bound: its own code
        raise SendFailure(exc.code.value, str(exc)[:1000], temporary=False) from exc
    except Exception as exc:
        raise SendFailure(
            SendFailureCode.RENDER_FAILED.value, describe_error(exc)[:1000], temporary=False
        ) from exc


def _cached(cache: dict[K, V], key: K, load: Callable[[K], V]) -> V:
    if key not in cache:
        cache[key] = load(key)
    return cache[key]


# --- recording a batch's outcomes -------------------------------------------------------------


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


def _record(
    session: Session,
    claim: Claim,
    outcomes: Sequence[_Outcome],
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
    _write(session, Transition.RECORD_SENT, batch.sent, {**common, **_NO_FAILURE})
    for transition, rows in (
        (Transition.RETRY_LATER, batch.retry),
        (Transition.GIVE_BACK, batch.given_back),
        (Transition.FAIL, batch.failed),
    ):
        _write(session, transition, rows, common)
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


def _write(
    session: Session,
    transition: Transition,
    rows: list[dict[str, Any]],
    common: Mapping[str, Any],
) -> None:
    """``transition`` for ``rows`` (each its ``id`` and own columns): one UPDATE per column set."""
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(frozenset(row), []).append(row)
    for group in by_columns.values():
        bulk_sql.update_rows(
            session,
            _INVITATIONS,
            group,
            key="id",
            where=[guard(transition)],
            values={"status": target(transition), **common},
        )


def _sort(
    session: Session,
    outcome: _Outcome,
    config: DispatchConfig,
    batch: _Batch,
    result: DispatchResult,
    at: datetime,
) -> None:
    """Put one outcome in its transition's list, with the columns it writes."""
    row = outcome.row
    if outcome.failure is None:
        assert outcome.sent_at is not None
        result.sent.append(row.id)
        batch.sent.append(
            {
                "id": row.id,
                "provider_message_id": outcome.message_id,
                "sent_at": outcome.sent_at,
                "expires_at": outcome.sent_at + tokens.INVITATION_LIFETIME,
            }
        )
        batch.count(row, "sent")
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


def _give_back(
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
    if failure.outcome_class == OutcomeClass.CONFIGURATION and failure.code != CHANNEL_PAUSED:
        pauses.pause(session, row.org_id, row.channel, failure.code, failure.detail)
    if failure.suppress and row.address:
        suppressions.suppress(
            session, row.org_id, row.channel, row.address, failure.code, invitation_id=row.id
        )


def fail_claimed(
    session: Session, invitation_ids: Sequence[int], code: str, detail: str, at: datetime
) -> None:
    """End claimed (``sending``) rows as failed (recovery: the last attempt lapsed); flushed."""
    rows = session.execute(
        move_ids(
            Transition.EXHAUST,
            invitation_ids,
            values={
                "claim_token": None,
                "claim_deadline": None,
                "token_hash": None,
                "failure_code": code,
                "failure_detail": detail,
                "updated_at": at,
            },
        ).returning(Invitation.id, Invitation.bulk_run_id, Invitation.portal_user_id)
    ).all()
    outbox.invitation_events(session, WebhookEventType.INVITATION_FAILED, [row.id for row in rows])
    counters: dict[int, dict[str, int]] = {}
    for row in rows:
        if row.bulk_run_id is not None:
            counters.setdefault(row.bulk_run_id, {"sent": 0, "failed": 0})["failed"] += 1
    release_failed_users(session, [row.portal_user_id for row in rows if row.portal_user_id], at)
    bulk.finish_if_done(session, bump_run_totals(session, counters))


def complete_from_receipts(session: Session, rows: Sequence[Any], at: datetime) -> list[int]:
    """End as sent the lapsed claims the provider had taken (recovery); flushed.

    ``rows`` carry ``id``, ``message_id`` and ``sent_at`` from their receipt. The SMS
    debit stays (the provider took the message; its size was noted with the debit).
    Returns the ids completed.
    """
    ids = [row.id for row in rows]
    runs = dict(
        session.execute(
            select(Invitation.id, Invitation.bulk_run_id).where(
                Invitation.id.in_(ids), has_status(InvitationStatus.SENDING)
            )
        ).all()
    )
    values = [
        {
            "id": row.id,
            "provider_message_id": row.message_id,
            "sent_at": row.sent_at,
            "expires_at": row.sent_at + tokens.INVITATION_LIFETIME,
        }
        for row in rows
        if row.id in runs
    ]
    common = {
        "claim_token": None,
        "claim_deadline": None,
        "sms_debited": 0,
        "failure_code": None,
        "failure_detail": None,
        "updated_at": at,
    }
    if values:
        _write(session, Transition.COMPLETE_FROM_RECEIPT, values, common)
        completed = [value["id"] for value in values]
        outbox.invitation_events(session, WebhookEventType.INVITATION_SENT, completed, now=at)
    receipts.forget(session, ids)
    counters: dict[int, dict[str, int]] = {}
    for run_id in runs.values():
        if run_id is not None:
            counters.setdefault(run_id, {"sent": 0, "failed": 0})["sent"] += 1
    bulk.finish_if_done(session, bump_run_totals(session, counters))
    return sorted(runs)


def release_failed_users(session: Session, portal_user_ids: Sequence[int], at: datetime) -> None:
    """A user whose first invitation failed for good frees its record and licence."""
    lifecycle.transition_from(
        session, portal_user_ids, PortalUserStatus.INVITED, lifecycle.Action.REMOVE, at
    )


def bump_run_totals(session: Session, counters: Mapping[int, Mapping[str, int]]) -> list[int]:
    """Move the runs' totals; returns the runs left with nothing in flight (maybe done)."""
    emptied = []
    for run_id, counts in counters.items():
        queued = session.scalar(
            update(BulkRun)
            .where(BulkRun.id == run_id)
            .values(
                sent=BulkRun.sent + counts["sent"],
                failed=BulkRun.failed + counts["failed"],
                queued=BulkRun.queued - (counts["sent"] + counts["failed"]),
            )
            .returning(BulkRun.queued)
            .execution_options(synchronize_session=False)
        )
        # Only a run this update emptied can have become complete, so only those are checked.
        if queued == 0:
            emptied.append(run_id)
    return emptied
