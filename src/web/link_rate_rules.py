"""How often the recipient's links may be opened and submitted: the numbers, in one place.

Counted over a moving window, for every accept, confirm-email and short-link request, GET
and POST alike (``/portal/accept`` and ``/portal/confirm-email`` too):

- **per client address**: 30 a minute and 300 an hour. A person opening their link and
  retrying a password needs a handful; a guesser is held to 300 an hour. An SMS code has at
  least 10 base-62 characters (59 bits), so even a million addresses guessing at that rate
  would need tens of thousands of years for one hit in expectation.
- **per token or code**: 10 a minute and 50 a day, so one leaked link cannot be hammered
  (each POST costs a scrypt hash and a strength estimate) and a shared address (an office's
  NAT) does not lock out a recipient whose own link is not the one being hammered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkRateRules:
    """Rate limits in the ``limits`` notation ("N/minute", "N/hour", "N/day")."""

    per_client: tuple[str, ...] = ("30/minute", "300/hour")
    per_token: tuple[str, ...] = ("10/minute", "50/day")


DEFAULT_RULES = LinkRateRules()
