"""Sending queued invitations: claim the rows, send, record each outcome.

Claim before you send: rows move ``queued -> sending`` in one compare-and-set UPDATE under
a fresh claim token and that is committed before any provider call, so a redelivered or
duplicated message finds nothing left to claim. Outcomes are written only for rows that
still carry our claim token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    CrmRecord,
    CrmUser,
    EmailKind,
    Invitation,
    InvitationStatus,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    SendFailureCode,
    utcnow,
)

from . import bulk, tokens
from .channels.base import EmailChannel, OutgoingEmail, SendFailure
from .message import build_message
from .rendering import CompiledEmailTemplate, load_email_template, render_context
from .retry import backoff_delay

# Outcomes are committed in small batches: bigger is faster, smaller narrows the window in
# which a worker killed after the provider accepted a message leaves it unrecorded.
OUTCOME_BATCH = 25
DEFAULT_FROM = "no-reply@portalflow.invalid"
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class DispatchConfig:
    """What a dispatch needs from the settings, as plain values."""

    portal_base_url: str
    max_attempts: int = 5
    default_from: str = DEFAULT_FROM


@dataclass
class DispatchResult:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # (invitation id, delay) for temporary failures that should be tried again.
    retry: list[tuple[int, timedelta]] = field(default_factory=list)
    # Ids that were not ours to send (already claimed, sent, superseded or not yet due).
    skipped: list[int] = field(default_factory=list)


@dataclass
class _Outcome:
    invitation: Invitation
    message_id: str | None = None
    sent_at: datetime | None = None
    failure: SendFailure | None = None


def dispatch(
    session: Session,
    invitation_ids: Sequence[int],
    *,
    channel: EmailChannel,
    config: DispatchConfig,
    now: Callable[[], datetime] = utcnow,
) -> DispatchResult:
    """Send every invitation of ``invitation_ids`` that is ours to send; commits as it goes."""
    result = DispatchResult()
    claim_token, claimed = _claim(session, invitation_ids, now())
    claimed_set = set(claimed)
    result.skipped = [i for i in invitation_ids if i not in claimed_set]
    if not claimed:
        return result
    plain_tokens = _issue_tokens(session, claimed)
    session.commit()

    sender = _Sender(session, channel, config)
    pending: list[_Outcome] = []
    for invitation, record in _load(session, claimed):
        pending.append(sender.send(invitation, record, plain_tokens[invitation.id], now))
        if len(pending) >= OUTCOME_BATCH:
            _record(session, claim_token, pending, config, result, now())
            pending = []
    _record(session, claim_token, pending, config, result, now())
    return result


def _claim(session: Session, ids: Sequence[int], at: datetime) -> tuple[str, list[int]]:
    claim_token = uuid.uuid4().hex
    if not ids:
        return claim_token, []
    claimed = session.scalars(
        update(Invitation)
        .where(
            Invitation.id.in_(list(ids)),
            Invitation.status == InvitationStatus.QUEUED,
            (Invitation.next_attempt_at.is_(None)) | (Invitation.next_attempt_at <= at),
        )
        .values(
            status=InvitationStatus.SENDING,
            claim_token=claim_token,
            claimed_at=at,
            attempts=Invitation.attempts + 1,
            updated_at=at,
        )
        .returning(Invitation.id)
        .execution_options(synchronize_session=False)
    ).all()
    return claim_token, sorted(claimed)


def _issue_tokens(session: Session, claimed: Sequence[int]) -> dict[int, str]:
    """A fresh token per claimed row; only the hash is written, before anything is sent."""
    issued = {invitation_id: tokens.new_token() for invitation_id in claimed}
    session.execute(
        update(Invitation),
        [{"id": i, "token_hash": digest} for i, (_token, digest) in issued.items()],
    )
    return {invitation_id: token for invitation_id, (token, _digest) in issued.items()}


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
    """Renders and sends one invitation at a time, caching per-chunk lookups."""

    def __init__(self, session: Session, channel: EmailChannel, config: DispatchConfig) -> None:
        self.session = session
        self.channel = channel
        self.config = config
        self.templates: dict[tuple[int, EmailKind, str], CompiledEmailTemplate] = {}
        # Strong references: the session's identity map alone would let these be collected.
        self.orgs: dict[int, Org] = {}
        self.user_types: dict[int, PortalUserType] = {}
        self.inviters: dict[int, CrmUser | None] = {}

    def send(
        self,
        invitation: Invitation,
        record: CrmRecord | None,
        token: str,
        now: Callable[[], datetime],
    ) -> _Outcome:
        try:
            email = self._build(invitation, record, token)
            message_id = self.channel.send(email)
        except SendFailure as failure:
            return _Outcome(invitation, failure=failure)
        return _Outcome(invitation, message_id=message_id, sent_at=now())

    def _build(self, invitation: Invitation, record: CrmRecord | None, token: str) -> OutgoingEmail:
        session = self.session
        org = _cached(self.orgs, invitation.org_id, lambda key: session.get_one(Org, key))
        user_type = _cached(
            self.user_types,
            invitation.user_type_id,
            lambda key: session.get_one(PortalUserType, key),
        )
        inviter = _cached(
            self.inviters, invitation.invited_by_id or 0, lambda key: session.get(CrmUser, key)
        )
        if org.portal is None or record is None or not invitation.address:
            raise SendFailure(
                SendFailureCode.PROVIDER_REJECTED.value,
                "the invitation lost its portal, record or address before the send",
                temporary=False,
            )
        link = invitation_link(self.config.portal_base_url, org.portal.slug, invitation.kind, token)
        context = render_context(
            record=record.merge_fields(),
            org=org,
            portal=org.portal,
            user_type=user_type,
            inviter_name=inviter.name if inviter else None,
            link=link,
            kind=invitation.kind,
            expires_at=utcnow() + tokens.INVITATION_LIFETIME,
        )
        rendered = self._template(invitation).render(context)
        from_address = org.default_from_email or self.config.default_from
        built = build_message(
            rendered=rendered,
            from_address=from_address,
            from_name=org.default_from_name or org.name,
            reply_to=org.default_reply_to,
            recipient=invitation.address,
            recipient_name=_full_name(record),
            headers={"X-Portalflow-Invitation": str(invitation.id)},
            message_id_domain=from_address.rpartition("@")[2],
        )
        return OutgoingEmail(
            invitation_id=invitation.id,
            envelope_from=built.envelope_from,
            recipient=built.recipient,
            raw=built.raw,
            message_id=built.message_id,
        )

    def _template(self, invitation: Invitation) -> CompiledEmailTemplate:
        key = (invitation.user_type_id, invitation.kind, invitation.language)
        if key not in self.templates:
            self.templates[key] = load_email_template(self.session, *key)
        return self.templates[key]


def _cached(cache: dict[K, V], key: K, load: Callable[[K], V]) -> V:
    if key not in cache:
        cache[key] = load(key)
    return cache[key]


def invitation_link(base_url: str, portal_slug: str, kind: EmailKind, token: str) -> str:
    action = "accept" if kind == EmailKind.ACCEPT_INVITATION else "confirm-email"
    return f"{base_url.rstrip('/')}/{portal_slug}/{action}?token={token}"


def _full_name(record: CrmRecord) -> str | None:
    name = " ".join(part for part in (record.first_name, record.last_name) if part)
    return name or None


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
    changes: list[dict[str, object]] = []
    released_users: list[int] = []
    counters: dict[int, dict[str, int]] = {}
    for outcome in outcomes:
        invitation = outcome.invitation
        if invitation.id not in ours:
            result.skipped.append(invitation.id)
            continue
        change, column = _change_for(outcome, config, at, result)
        changes.append({"id": invitation.id, "claim_token": None, "updated_at": at, **change})
        if change.get("status") == InvitationStatus.FAILED and invitation.portal_user_id:
            released_users.append(invitation.portal_user_id)
        if invitation.bulk_run_id is not None and column:
            run_counts = counters.setdefault(invitation.bulk_run_id, {"sent": 0, "failed": 0})
            run_counts[column] += 1
    if changes:
        session.execute(update(Invitation), changes)
    _release_portal_users(session, released_users, at)
    _bump_counters(session, counters)
    bulk.finish_if_done(session, counters)
    session.commit()


def _change_for(
    outcome: _Outcome, config: DispatchConfig, at: datetime, result: DispatchResult
) -> tuple[dict[str, object], str | None]:
    """The row change for one outcome, and which run counter it moves (if any)."""
    invitation = outcome.invitation
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
        }, "sent"
    failure = outcome.failure
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
    }, "failed"


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


def _bump_counters(session: Session, counters: dict[int, dict[str, int]]) -> None:
    for run_id, counts in counters.items():
        session.execute(
            update(BulkRun)
            .where(BulkRun.id == run_id)
            .values(
                sent=BulkRun.sent + counts["sent"],
                failed=BulkRun.failed + counts["failed"],
                queued=BulkRun.queued - (counts["sent"] + counts["failed"]),
            )
            .execution_options(synchronize_session=False)
        )
