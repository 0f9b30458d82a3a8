"""What a provider's webhook body says, parsed and checked before it is stored.

The HTTP handlers verify who called (the SNS signature, Twilio's request signature); these
functions read the body: one :class:`IncomingEvent` to store, or :class:`BadPayload`
naming what is wrong (the handler answers 400).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from portalflow.models import ProviderEventStatus


class BadPayload(ValueError):
    """A webhook body that is not what the provider sends; the message says what is wrong."""


@dataclass(frozen=True)
class IncomingEvent:
    """A provider event as it is stored: classified later by the ``process_provider_event``
    actor, unless it is ``IGNORED`` (kept for the record only)."""

    provider: str
    dedupe_key: str
    payload: dict[str, Any]
    status: ProviderEventStatus = ProviderEventStatus.RECEIVED
    detail: str | None = None

    @property
    def to_classify(self) -> bool:
        return self.status == ProviderEventStatus.RECEIVED


def sns_message(body: bytes) -> dict[str, Any]:
    """The SNS message of a request body (a JSON object), before its signature is checked."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadPayload("the body is not JSON") from None
    if not isinstance(message, dict):
        raise BadPayload("the body is not a JSON object")
    return message


def ses_notification(message: dict[str, Any]) -> IncomingEvent:
    """A verified SNS ``Notification``: the SES event inside it, to classify."""
    payload = dict(message)
    payload["message"] = _inner_message(message["Message"])
    return IncomingEvent("ses", _ses_key(message), payload)


def sns_housekeeping(message: dict[str, Any], detail: str) -> IncomingEvent:
    """A verified SNS (un)subscription message: kept for the record, never classified."""
    return IncomingEvent(
        "ses",
        _ses_key(message),
        dict(message),
        status=ProviderEventStatus.IGNORED,
        detail=f"SNS {message['Type']}: {detail}",
    )


def twilio_form(body: bytes) -> dict[str, str]:
    """A Twilio status callback's form fields (checked against its signature next)."""
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise BadPayload("the body is not form-encoded") from None


def twilio_status(form: dict[str, str]) -> IncomingEvent:
    """A verified Twilio status callback: one event per (message, status), to classify."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        raise BadPayload("MessageSid and MessageStatus are required")
    return IncomingEvent("twilio", f"twilio:{sid}:{status}", form)


def _ses_key(message: dict[str, Any]) -> str:
    return f"ses:{message['MessageId']}"


def _inner_message(text: str) -> Any:
    """SES puts its event as a JSON string inside the SNS Message; None if it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
