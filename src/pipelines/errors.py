"""The errors pipelines raise for bad input; each message names what is wrong."""

from __future__ import annotations

from portalflow.models import Refusal, RefusalCode


class PortalflowError(ValueError):
    """Base of every error a caller can fix by changing its input."""


class NotFound(PortalflowError):
    """A referenced org, user type, user, record or run does not exist (in that org)."""


class InvalidInput(PortalflowError):
    """A value breaks a rule; nothing was written."""


class Refused(InvalidInput):
    """A rule with a stable code refused the request; ``refusal`` is its code and detail."""

    def __init__(self, code: RefusalCode, detail: str) -> None:
        super().__init__(detail)
        self.refusal = Refusal(code, detail)
