"""The one interface every SMS channel implements; failures reuse `base.SendFailure`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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


class LookupUnavailable(Exception):
    """The channel cannot tell whether it holds a message (no such API, or no answer).

    Its text names the channel and the kind of trouble, never a number or a body.
    """


class SmsChannel(Protocol):
    """Hands text messages to one provider; an instance is used by one thread at a time."""

    name: str

    def send(self, sms: OutgoingSms) -> str:
        """Send one message and return the provider's id for it; raise `SendFailure`."""
        ...

    def find_sent(self, to: str, since: datetime, matches: Callable[[str], bool]) -> str | None:
        """The provider's id of a message to ``to`` created at or after ``since`` whose body
        ``matches``; None when the provider holds none; `LookupUnavailable` when it cannot
        tell. Recovery asks this before giving back the debit of an attempt it takes over."""
        ...

    def close(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...
