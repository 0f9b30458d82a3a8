"""The errors pipelines raise for bad input; each message names what is wrong."""

from __future__ import annotations


class PortalflowError(ValueError):
    """Base of every error a caller can fix by changing its input."""


class NotFound(PortalflowError):
    """A referenced org, user type, user, record or run does not exist (in that org)."""


class InvalidInput(PortalflowError):
    """A value breaks a rule; nothing was written."""
