"""The one interface every email channel implements, and the failure it raises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

# Failure codes shared by several channels; each channel module adds its own.
CONNECTION_ERROR = "connection_error"


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered message, ready for any channel."""

    invitation_id: int
    envelope_from: str  # bare address
    recipient: str  # bare address
    raw: bytes  # whole RFC 5322 message, CRLF line endings
    message_id: str  # the Message-ID header value


class SendFailure(Exception):
    """The provider did not take the message. `temporary` means retry later."""

    def __init__(self, code: str, detail: str, *, temporary: bool) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.temporary = temporary

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # `temporary` is keyword-only, which Exception's default pickling cannot pass.
        return partial(type(self), temporary=self.temporary), (self.code, self.detail)

    def __str__(self) -> str:
        kind = "temporary" if self.temporary else "permanent"
        return f"{self.code} ({kind}): {self.detail}"


class EmailChannel(Protocol):
    """Hands messages to one provider; an instance is used by one thread at a time."""

    name: str

    def send(self, email: OutgoingEmail) -> str:
        """Send one message and return the provider's id for it; raise `SendFailure`."""
        ...

    def close(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...
