"""The one interface every email channel implements, and the failure it raises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from portalflow.models import OutcomeClass
from portalflow.pipelines.delivery.outcomes import Outcome

# Failure codes shared by several channels; each channel module adds its own.


def describe_error(exc: BaseException) -> str:
    """``Type: message`` (or the type alone), for a failure's detail."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered message, ready for any channel."""

    invitation_id: int
    envelope_from: str  # bare address
    recipient: str  # bare address
    raw: bytes  # whole RFC 5322 message, CRLF line endings
    message_id: str  # the Message-ID header value


class SendFailure(Exception):
    """The provider did not take the message. `temporary` means retry later.

    ``outcome_class`` says what to do beyond that: ``configuration`` pauses the channel
    for the org instead of retrying; ``suppress`` puts the address on the org's list.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        temporary: bool,
        outcome_class: OutcomeClass | None = None,
        suppress: bool = False,
    ) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.temporary = temporary
        self.outcome_class = outcome_class or (
            OutcomeClass.TEMPORARY if temporary else OutcomeClass.PERMANENT
        )
        self.suppress = suppress

    @classmethod
    def from_outcome(cls, outcome: Outcome, detail: str) -> SendFailure:
        """The failure for a classified provider answer."""
        return cls(
            outcome.code,
            detail,
            temporary=outcome.retryable,
            outcome_class=outcome.outcome_class,
            suppress=outcome.suppresses,
        )

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # The options are keyword-only, which Exception's default pickling cannot pass.
        options = {
            "temporary": self.temporary,
            "outcome_class": self.outcome_class,
            "suppress": self.suppress,
        }
        return partial(type(self), **options), (self.code, self.detail)

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
