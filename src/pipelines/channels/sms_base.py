"""The one interface every SMS channel implements; failures reuse `base.SendFailure`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingSms:
    """One text message, already checked against its DLT template, ready for any channel."""

    invitation_id: int
    to: str  # E.164, e.g. "+919812345678"
    body: str  # the final text
    sender_id: str | None  # DLT header / sender id, e.g. "ZYLKER"
    dlt_entity_id: str | None
    dlt_template_id: str


class SmsChannel(Protocol):
    """Hands text messages to one provider; an instance is used by one thread at a time."""

    name: str

    def send(self, sms: OutgoingSms) -> str:
        """Send one message and return the provider's id for it; raise `SendFailure`."""
        ...

    def close(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...
