"""Signing a webhook the way Stripe and Standard Webhooks do: HMAC-SHA256 over time and body.

    Portalflow-Timestamp: 1764590400
    Portalflow-Signature: v1=5257a869...,v1=0c4d11b2...

Each ``v1`` is ``hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))``, one per secret valid
now (during a rotation: the new one first, then the previous one until it expires), so a
receiver that knows either accepts the call. The timestamp is signed, so a receiver that
refuses old timestamps (five minutes is usual) refuses a replayed call.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

TIMESTAMP_HEADER = "Portalflow-Timestamp"
SIGNATURE_HEADER = "Portalflow-Signature"
EVENT_ID_HEADER = "Portalflow-Event-Id"
EVENT_TYPE_HEADER = "Portalflow-Event-Type"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """``v1=<hex>`` for each secret, comma-separated, in the order given."""
    if not secrets:
        raise ValueError("a webhook is signed with at least one secret")
    return ",".join(f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets)


def headers(
    secrets: Sequence[str], timestamp: int, body: bytes, event_id: str, event_type: str
) -> dict[str, str]:
    """Every header of one signed webhook POST."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "portalflow-webhooks/1",
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
    }
