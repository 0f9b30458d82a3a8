"""Sending queued invitations: claim the rows, send, record each outcome.

Claim before you send: rows move ``queued -> sending`` in one compare-and-set UPDATE under
a fresh claim token and that is committed before any provider call, so a redelivered or
duplicated message finds nothing left to claim. Outcomes are written only for rows that
still carry our claim token. The provider's message id is committed as a receipt the
moment it takes a message, so recovery tells a dead worker's sent rows from its unsent
ones. SMS credits are debited (and committed) before the provider call and given back
when the provider does not take the message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    Channel,
    CrmRecord,
    CrmUser,
    DataCentre,
    Invitation,
    InvitationStatus,
    Org,
    OutcomeClass,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    SendFailureCode,
    utcnow,
)

from . import bulk, credits, pauses, suppressions, tokens
from .channels.base import SendFailure
from .channels.bundle import Channels
from .outgoing_email import DEFAULT_FROM, EmailBuilder
from .outgoing_sms import SmsBuilder, short_code_length, short_link
from .retry import backoff_delay
from .sms_text import CheckedSms

# Rows are claimed, sent and their outcomes recorded in batches of this many: bigger is
# faster; a worker that dies leaves at most one batch ``sending`` until its claim's lease
# expires (the rows the provider took carry their receipt: see _keep_receipt).
OUTCOME_BATCH = 25
# How long a live worker keeps trying to commit a provider's receipt while the database is
# unreachable (restarting, failing over); far below the claim lease, so recovery never races it.
RECEIPT_RETRY_SECONDS = 60.0
CHANNEL_PAUSED = "channel_paused"
_INVITATIONS = Invitation.__table__
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


@dataclass
class DispatchResult:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # (invitation id, delay) for temporary failures that should be tried again.
    retry: list[tuple[int, timedelta]] = field(default_factory=list)
    # Ids that were not ours to send (already claimed, sent, superseded or not yet due).
    skipped: list[int] = field(default_factory=list)
    # Ids given back unsent because their org's channel is misconfigured (now paused).
    paused: list[int] = field(default_factory=list)


@dataclass
class _Outcome:
    invitation: Invitation
    message_id: str | None = None
    sent_at: datetime | None = None
    failure: SendFailure | None = None
    sms: CheckedSms | None = None
    dlt_template_id: str | None = None
    debited: int = 0  # SMS credits taken for this attempt


def dispatch(
    session: Session,
    invitation_ids: Sequence[int],
    *,
    channels: Channels,
    config: DispatchConfig,
    now: Callable[[], datetime] = utcnow,
) -> DispatchResult:
    """Send every invitation of ``invitation_ids`` that is ours to send; commits as it goes."""
    result = DispatchResult()
    sender = _Sender(session, channels, config)
    for start in range(0, len(invitation_ids), OUTCOME_BATCH):
        batch = invitation_ids[start : start + OUTCOME_BATCH]
        _dispatch_batch(session, sender, batch, config, result, now)
    return result


def _dispatch_batch(
    session: Session,
    sender: _Sender,
    invitation_ids: Sequence[int],
    config: DispatchConfig,
    result: DispatchResult,
    now: Callable[[], datetime],
) -> None:
    """Claim one batch just before sending it, send it, and commit its outcomes.

    Claiming a batch at a time keeps ``sending`` to the rows whose send is under way: a
    worker that dies leaves at most one batch claimed (after the lease, its rows with a
    receipt are completed and the others sent again), while the rest of its chunk stays
    ``queued`` for the next delivery, its attempts unspent.
    """
    claim_token, claimed = _claim(session, invitation_ids, now())
    result.skipped.extend(i for i in invitation_ids if i not in claimed)
    if not claimed:
        return
    plain_tokens = _issue_tokens(session, claimed, config)
    session.commit()
    outcomes = []
    for invitation, record in _load(session, list(claimed)):
        outcome = sender.send(invitation, record, plain_tokens[invitation.id], now)
        if outcome.message_id is not None:
            _keep_receipt(session, claim_token, outcome)
        outcomes.append(outcome)
    _record(session, claim_token, outcomes, config, result, now())


# Built once: the receipt is written per message, where statement building would show.
_RECEIPT = (
    update(_INVITATIONS)
    .where(
        _INVITATIONS.c.id == bindparam("row_id"), _INVITATIONS.c.claim_token == bindparam("claim")
    )
    .values(
        provider_message_id=bindparam("message_id"),
        sent_at=bindparam("sent"),
        expires_at=bindparam("expires"),
    )
)


def _keep_receipt(session: Session, claim_token: str, outcome: _Outcome) -> None:
    """Commit the provider's message id the moment the provider has taken the message.

    The row stays ``sending`` until its batch is recorded; if the worker dies first,
    recovery finds the receipt and completes the row as sent instead of sending it again,
    so a crash can duplicate only a message taken just before its receipt was committed.
    A database outage does not lose the receipt: it is retried until the database is back.
    """
    assert outcome.sent_at is not None
    receipt = {
        "row_id": outcome.invitation.id,
        "claim": claim_token,
        "message_id": outcome.message_id,
        "sent": outcome.sent_at,
        "expires": outcome.sent_at + tokens.INVITATION_LIFETIME,
    }
    deadline = time.monotonic() + RECEIPT_RETRY_SECONDS
    delay = 0.1
    while True:
        try:
            session.execute(_RECEIPT, receipt)
            session.commit()
            return
        except (OperationalError, InterfaceError):
            session.rollback()
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _claim(session: Session, ids: Sequence[int], at: datetime) -> tuple[str, dict[int, tuple]]:
    """Claim the due, queued rows; returns the claim token and id -> (channel, org id)."""
    claim_token = uuid.uuid4().hex
    if not ids:
        return claim_token, {}
    rows = session.execute(
        update(Invitation)
        .where(
            Invitation.id.in_(list(ids)),
            Invitation.status == InvitationStatus.QUEUED,
            (Invitation.next_attempt_at.is_(None)) | (Invitation.next_attempt_at <= at),
            pauses.not_paused(),
        )
        .values(
            status=InvitationStatus.SENDING,
            claim_token=claim_token,
            claimed_at=at,
            attempts=Invitation.attempts + 1,
            updated_at=at,
        )
        .returning(Invitation.id, Invitation.channel, Invitation.org_id)
        .execution_options(synchronize_session=False)
    ).all()
    return claim_token, {row.id: (row.channel, row.org_id) for row in sorted(rows)}


def _issue_tokens(
    session: Session, claimed: Mapping[int, tuple], config: DispatchConfig
) -> dict[int, str]:
    """A fresh token per claimed row; only the hash is written, before anything is sent.

    Email links carry a 256-bit token; an SMS link must fit a DLT variable (30 characters
    by default), so its token is the longest short-link code that fits.
    """
    sms_orgs = {org_id for channel, org_id in claimed.values() if channel == Channel.SMS}
    code_lengths = {
        org_id: short_code_length(
            _short_link_domain(session, org_id, config), config.variable_limits
        )
        for org_id in sms_orgs
    }
    issued = {
        invitation_id: (
            tokens.new_short_code(code_lengths[org_id])
            if channel == Channel.SMS
            else tokens.new_token()
        )
        for invitation_id, (channel, org_id) in claimed.items()
    }
    _update_by_id(session, [{"id": i, "token_hash": h} for i, (_token, h) in issued.items()])
    return {invitation_id: token for invitation_id, (token, _digest) in issued.items()}


def _short_link_domain(session: Session, org_id: int, config: DispatchConfig) -> str:
    data_centre = session.get_one(Org, org_id).data_centre
    return config.short_link_domains.get(data_centre.value, f"{data_centre.value}.zcrm.to")


def _load(session: Session, ids: Sequence[int]) -> list[tuple[Invitation, CrmRecord | None]]:
    """The claimed invitations with their records, in one query."""
    rows = session.execute(
        select(Invitation, CrmRecord)
        .outerjoin(CrmRecord, CrmRecord.id == Invitation.record_id)
        .where(Invitation.id.in_(ids))
        .order_by(Invitation.id)
        # The claim was a bulk UPDATE: refresh any copy the session already holds.
        .execution_options(populate_existing=True)
    )
    return [(invitation, record) for invitation, record in rows]


class _Sender:
    """Sends one invitation at a time through its channel, caching per-dispatch lookups."""

    def __init__(self, session: Session, channels: Channels, config: DispatchConfig) -> None:
        self.session = session
        self.channels = channels
        self.config = config
        self.emails = EmailBuilder(session, config.portal_base_url, config.default_from)
        self.texts = SmsBuilder(session, config.variable_limits)
        # Strong references: the session's identity map alone would let these be collected.
        self.orgs: dict[int, Org] = {}
        self.user_types: dict[int, PortalUserType] = {}
        self.inviters: dict[int, CrmUser | None] = {}
        # (org, channel) found misconfigured during this dispatch: nothing more goes out.
        self.misconfigured: set[tuple[int, Channel]] = set()

    def send(
        self,
        invitation: Invitation,
        record: CrmRecord | None,
        token: str,
        now: Callable[[], datetime],
    ) -> _Outcome:
        session = self.session
        org = _cached(self.orgs, invitation.org_id, lambda key: session.get_one(Org, key))
        outcome = _Outcome(invitation)
        route = (invitation.org_id, invitation.channel)
        try:
            if route in self.misconfigured:
                raise SendFailure(
                    CHANNEL_PAUSED,
                    f"the {invitation.channel.value} channel failed with a configuration error",
                    temporary=False,
                    outcome_class=OutcomeClass.CONFIGURATION,
                )
            if org.portal is None or record is None or not invitation.address:
                raise SendFailure(
                    SendFailureCode.PROVIDER_REJECTED.value,
                    "the invitation lost its portal, record or address before the send",
                    temporary=False,
                )
            if invitation.channel == Channel.SMS:
                outcome.message_id = self._send_sms(outcome, record, org, token)
            else:
                outcome.message_id = self._send_email(invitation, record, org, token)
        except SendFailure as failure:
            outcome.failure = failure
            if failure.outcome_class == OutcomeClass.CONFIGURATION:
                self.misconfigured.add(route)
            return outcome
        outcome.sent_at = now()
        return outcome

    def _send_email(self, invitation: Invitation, record: CrmRecord, org: Org, token: str) -> str:
        session = self.session
        user_type = _cached(
            self.user_types,
            invitation.user_type_id,
            lambda key: session.get_one(PortalUserType, key),
        )
        inviter = _cached(
            self.inviters, invitation.invited_by_id or 0, lambda key: session.get(CrmUser, key)
        )
        email = self.emails.build(invitation, record, org, user_type, inviter, token)
        return self.channels.email.send(email)

    def _send_sms(self, outcome: _Outcome, record: CrmRecord, org: Org, token: str) -> str:
        link = short_link(_short_link_domain(self.session, org.id, self.config), token)
        prepared = self.texts.build(outcome.invitation, record, org, link)
        outcome.sms = prepared.checked
        outcome.dlt_template_id = prepared.sms.dlt_template_id
        if not credits.debit(self.session, org.id, prepared.checked.segments):
            raise SendFailure(
                SendFailureCode.INSUFFICIENT_SMS_CREDITS.value,
                f"{org.name} has fewer than {prepared.checked.segments} SMS credits left",
                temporary=False,
            )
        # The debit is durable before the provider call: a crash cannot send for free.
        self.session.commit()
        outcome.debited = prepared.checked.segments
        return self.channels.sms.send(prepared.sms)


def _cached(cache: dict[K, V], key: K, load: Callable[[K], V]) -> V:
    if key not in cache:
        cache[key] = load(key)
    return cache[key]


def _record(
    session: Session,
    claim_token: str,
    outcomes: Sequence[_Outcome],
    config: DispatchConfig,
    result: DispatchResult,
    at: datetime,
) -> None:
    """Write a batch of outcomes for the rows still under our claim, then commit."""
    if not outcomes:
        return
    ours = set(
        session.scalars(
            select(Invitation.id)
            .where(
                Invitation.id.in_([o.invitation.id for o in outcomes]),
                Invitation.claim_token == claim_token,
                Invitation.status == InvitationStatus.SENDING,
            )
            .with_for_update()
        )
    )
    changes: dict[frozenset[str], list[dict[str, object]]] = {}
    released_users: list[int] = []
    counters: dict[int, dict[str, int]] = {}
    for outcome in outcomes:
        invitation = outcome.invitation
        if outcome.failure is not None and outcome.debited:
            # The provider did not take it, whoever owns the row now.
            credits.refund(session, invitation.org_id, outcome.debited)
        if invitation.id not in ours:
            result.skipped.append(invitation.id)
            continue
        change, column = _change_for(outcome, config, at, result)
        _act_on_failure(session, outcome)
        row = {"id": invitation.id, "claim_token": None, "updated_at": at, **change}
        changes.setdefault(frozenset(row), []).append(row)
        if change.get("status") == InvitationStatus.FAILED and invitation.portal_user_id:
            released_users.append(invitation.portal_user_id)
        if invitation.bulk_run_id is not None and column:
            run_counts = counters.setdefault(invitation.bulk_run_id, {"sent": 0, "failed": 0})
            run_counts[column] += 1
    for rows in changes.values():
        _update_by_id(session, rows)
    _release_portal_users(session, released_users, at)
    bulk.finish_if_done(session, _bump_counters(session, counters))
    session.commit()


def _act_on_failure(session: Session, outcome: _Outcome) -> None:
    """Pause a misconfigured channel; suppress an address the provider refused for good."""
    failure, invitation = outcome.failure, outcome.invitation
    if failure is None:
        return
    if failure.outcome_class == OutcomeClass.CONFIGURATION and failure.code != CHANNEL_PAUSED:
        pauses.pause(session, invitation.org_id, invitation.channel, failure.code, failure.detail)
    if failure.suppress and invitation.address:
        suppressions.suppress(
            session,
            invitation.org_id,
            invitation.channel,
            invitation.address,
            failure.code,
            invitation_id=invitation.id,
        )


def _change_for(
    outcome: _Outcome, config: DispatchConfig, at: datetime, result: DispatchResult
) -> tuple[dict[str, object], str | None]:
    """The row change for one outcome, and which run counter it moves (if any)."""
    invitation = outcome.invitation
    sms = (
        {
            "sms_encoding": outcome.sms.encoding,
            "sms_segments": outcome.sms.segments,
            "dlt_template_id": outcome.dlt_template_id,
        }
        if outcome.sms
        else {}
    )
    if outcome.failure is None:
        assert outcome.sent_at is not None
        result.sent.append(invitation.id)
        return {
            "status": InvitationStatus.SENT,
            "provider_message_id": outcome.message_id,
            "sent_at": outcome.sent_at,
            "expires_at": outcome.sent_at + tokens.INVITATION_LIFETIME,
            "failure_code": None,
            "failure_detail": None,
            **sms,
        }, "sent"
    failure = outcome.failure
    if failure.outcome_class == OutcomeClass.CONFIGURATION:
        # Our side is broken, not the invitation: give it back without spending the attempt;
        # it goes out when an admin resumes the channel.
        result.paused.append(invitation.id)
        return {
            "status": InvitationStatus.QUEUED,
            "attempts": invitation.attempts - 1,
            "next_attempt_at": None,
            "token_hash": None,
            "failure_code": failure.code,
            "failure_detail": failure.detail,
        }, None
    if failure.temporary and invitation.attempts < config.max_attempts:
        delay = backoff_delay(invitation.attempts)
        result.retry.append((invitation.id, delay))
        return {
            "status": InvitationStatus.QUEUED,
            "next_attempt_at": at + delay,
            "token_hash": None,
            "failure_code": failure.code,
            "failure_detail": failure.detail,
        }, None
    result.failed.append(invitation.id)
    code = SendFailureCode.TECHNICAL_FAILURE.value if failure.temporary else failure.code
    return {
        "status": InvitationStatus.FAILED,
        "token_hash": None,
        "failure_code": code,
        "failure_detail": failure.detail,
        **sms,
    }, "failed"


def fail_claimed(
    session: Session, invitation_ids: Sequence[int], code: str, detail: str, at: datetime
) -> None:
    """End claimed (``sending``) rows as failed, moving their runs' totals (flushed)."""
    rows = session.execute(
        update(Invitation)
        .where(
            Invitation.id.in_(list(invitation_ids)), Invitation.status == InvitationStatus.SENDING
        )
        .values(
            status=InvitationStatus.FAILED,
            claim_token=None,
            token_hash=None,
            failure_code=code,
            failure_detail=detail,
            updated_at=at,
        )
        .returning(Invitation.bulk_run_id, Invitation.portal_user_id)
        .execution_options(synchronize_session=False)
    ).all()
    counters: dict[int, dict[str, int]] = {}
    for row in rows:
        if row.bulk_run_id is not None:
            counters.setdefault(row.bulk_run_id, {"sent": 0, "failed": 0})["failed"] += 1
    _release_portal_users(session, [row.portal_user_id for row in rows if row.portal_user_id], at)
    bulk.finish_if_done(session, _bump_counters(session, counters))


def complete_accepted(session: Session, invitation_ids: Sequence[int], at: datetime) -> list[int]:
    """End as sent the claimed rows whose provider receipt was kept; moves run totals (flushed).

    For rows a dead worker left ``sending``: the provider took them, so they are not sent
    again. Returns the ids completed.
    """
    rows = session.execute(
        update(Invitation)
        .where(
            Invitation.id.in_(list(invitation_ids)),
            Invitation.status == InvitationStatus.SENDING,
            Invitation.provider_message_id.is_not(None),
        )
        .values(
            status=InvitationStatus.SENT,
            claim_token=None,
            failure_code=None,
            failure_detail=None,
            updated_at=at,
        )
        .returning(Invitation.id, Invitation.bulk_run_id)
        .execution_options(synchronize_session=False)
    ).all()
    counters: dict[int, dict[str, int]] = {}
    for row in rows:
        if row.bulk_run_id is not None:
            counters.setdefault(row.bulk_run_id, {"sent": 0, "failed": 0})["sent"] += 1
    bulk.finish_if_done(session, _bump_counters(session, counters))
    return [row.id for row in rows]


def _release_portal_users(session: Session, portal_user_ids: Sequence[int], at: datetime) -> None:
    """A user whose first invitation failed for good frees its record and licence."""
    if portal_user_ids:
        session.execute(
            update(PortalUser)
            .where(
                PortalUser.id.in_(portal_user_ids),
                PortalUser.status == PortalUserStatus.INVITED,
            )
            .values(status=PortalUserStatus.REMOVED, updated_at=at)
            .execution_options(synchronize_session=False)
        )


def _bump_counters(session: Session, counters: dict[int, dict[str, int]]) -> list[int]:
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


def _update_by_id(session: Session, rows: Sequence[Mapping[str, object]]) -> None:
    """One executemany UPDATE of invitations by id; every row carries the same columns.

    Core, not the ORM's bulk update: the rows are plain values already, and the ORM's
    per-row bookkeeping was about a third of a 25-row update's CPU time.
    """
    if rows:
        session.execute(
            update(_INVITATIONS).where(_INVITATIONS.c.id == bindparam("row_id")),
            [{"row_id": row["id"], **{k: v for k, v in row.items() if k != "id"}} for row in rows],
        )
