"""Applying what a provider says after the send (SES events, Twilio callbacks) to the rows.

Events arrive late, twice, or out of order; an invitation's outcome only moves to a
weightier one (``outcomes.supersedes``), so replays change nothing and a late Delivery
never hides a bounce.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    Invitation,
    OutcomeClass,
    ProviderEvent,
    ProviderEventStatus,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.errors import NotFound
from portalflow.pipelines.invitations import suppressions

from . import email_outcomes, outcomes, pauses, sms_outcomes
from .outcomes import Outcome


def process_event(session: Session, event_id: int, now: datetime | None = None) -> ProviderEvent:
    """Classify one stored event and apply it; idempotent (a processed event is left as is)."""
    event = session.get(ProviderEvent, event_id, with_for_update=True)
    if event is None:
        raise NotFound(f"provider event {event_id} does not exist")
    if event.status != ProviderEventStatus.RECEIVED:
        return event
    now = now or utcnow()
    try:
        status, detail = _apply(session, event.provider, event.payload, now)
    except (ValueError, KeyError, TypeError) as exc:
        status, detail = ProviderEventStatus.FAILED, f"not understood: {exc}"
    event.status, event.detail, event.processed_at = status, detail, now
    session.flush()
    return event


def _apply(
    session: Session, provider: str, payload: Mapping[str, Any], now: datetime
) -> tuple[ProviderEventStatus, str]:
    if provider == "ses":
        if payload.get("Type", "Notification") != "Notification":
            return ProviderEventStatus.IGNORED, f"SNS {payload.get('Type')} message"
        message = payload["message"]
        if not isinstance(message, Mapping):  # the SNS Message was not a JSON object
            raise ValueError(f"the SNS Message is not an SES event object: {message!r:.80}")
        provider_id = email_outcomes.ses_message_id(message)
        results = email_outcomes.classify_ses_event(message)
    elif provider == "twilio":
        provider_id = str(payload["MessageSid"])
        outcome = sms_outcomes.classify_twilio_status(
            str(payload["MessageStatus"]), payload.get("ErrorCode")
        )
        if outcome is None:
            return ProviderEventStatus.IGNORED, f"status {payload['MessageStatus']} is not final"
        results = [(str(payload.get("To", "")), outcome)]
    else:
        raise ValueError(f"unknown provider {provider!r}")
    invitation = session.scalar(
        select(Invitation).where(Invitation.provider_message_id == provider_id)
    )
    if invitation is None:
        return ProviderEventStatus.IGNORED, f"no invitation was sent as {provider_id}"
    applied = [apply_outcome(session, invitation, outcome, now) for _, outcome in results]
    codes = ", ".join(outcome.code for _, outcome in results)
    verb = "applied" if any(applied) else "no change (not weightier than the current outcome)"
    return ProviderEventStatus.PROCESSED, f"invitation {invitation.id}: {codes}: {verb}"


def apply_outcome(
    session: Session, invitation: Invitation, outcome: Outcome, now: datetime
) -> bool:
    """Record ``outcome`` on the invitation if it outweighs the current one; True if it did."""
    if not outcomes.supersedes(outcome.outcome_class, invitation.outcome_class):
        return False
    invitation.outcome_class = outcome.outcome_class
    invitation.outcome_code = outcome.code
    invitation.outcome_raw = outcome.raw[:200] or None
    invitation.outcome_at = now
    if outcome.suppresses and invitation.address:
        suppressions.suppress(
            session,
            invitation.org_id,
            invitation.channel,
            invitation.address,
            outcome.code,
            invitation_id=invitation.id,
        )
    if outcome.outcome_class == OutcomeClass.CONFIGURATION:
        pauses.pause(
            session,
            invitation.org_id,
            invitation.channel,
            outcome.code,
            outcomes.describe(outcome.code),
        )
    session.flush()
    told = (
        WebhookEventType.INVITATION_DELIVERED
        if outcome.outcome_class == OutcomeClass.DELIVERED
        else WebhookEventType.INVITATION_FAILED
    )
    outbox.invitation_events(session, told, [invitation.id], org_id=invitation.org_id, now=now)
    return True
