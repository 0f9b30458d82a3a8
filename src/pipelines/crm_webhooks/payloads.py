"""The body of every webhook event: ``{"id", "type", "created_at", "org_id", "data"}``.

``id`` is the event's own (``evt_`` and 32 hex digits), the same for every endpoint and
every attempt: the key a CRM de-duplicates on. ``data`` carries the ids the CRM knows:
``record_id`` (its record's id), ``user_type_id``, and ours (``portal_user_id``,
``invitation_id``). An invitation's failure says where it failed (``stage``), its ``code``
and the ``outcome_class`` (``permanent`` or ``temporary``; after the send, the provider's).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from portalflow.models import OutcomeClass, SendFailureCode, WebhookEventType

# Failure codes of an invitation that was not refused for good: trying again may succeed.
TEMPORARY_CODES = frozenset({SendFailureCode.TECHNICAL_FAILURE.value})


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


# One encoder for every body: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def timestamp(at: datetime) -> str:
    """An event's ``created_at``: ISO 8601 in UTC with a Z."""
    return at.isoformat().replace("+00:00", "Z")


def body(
    event_id: str,
    event_type: WebhookEventType,
    org_id: int,
    at: datetime | str,
    data: dict[str, Any],
) -> str:
    """The exact JSON text sent and signed (compact; the keys in the order written here)."""
    document = {
        "id": event_id,
        "type": event_type.value,
        "created_at": at if isinstance(at, str) else timestamp(at),
        "org_id": org_id,
        "data": data,
    }
    return _ENCODER.encode(document)


def order_key(portal_user_id: int | None, crm_id: str | None) -> str | None:
    """Events of one portal user (or, before it has one, one record) are kept in order."""
    if portal_user_id is not None:
        return f"user:{portal_user_id}"
    if crm_id is not None:
        return f"record:{crm_id}"[:80]
    return None


def failure_fields(
    failure_code: str | None,
    outcome_class: str | None,
    outcome_code: str | None,
    attempted: bool,
) -> dict[str, Any]:
    """Where an invitation failed, its code and its outcome class."""
    if outcome_class is not None and outcome_class != OutcomeClass.DELIVERED:
        return {"stage": "after_send", "code": outcome_code, "outcome_class": outcome_class}
    code = failure_code
    temporary = code in TEMPORARY_CODES
    return {
        "stage": "at_send" if attempted else "before_send",
        "code": code,
        "outcome_class": (OutcomeClass.TEMPORARY if temporary else OutcomeClass.PERMANENT).value,
    }
