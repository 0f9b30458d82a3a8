"""Backoff for temporary send failures: exponential, jittered, capped."""

from __future__ import annotations

import random
from datetime import timedelta

BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(minutes=30)


def backoff_delay(
    attempt: int, *, base: timedelta = BASE_DELAY, cap: timedelta = MAX_DELAY
) -> timedelta:
    """Delay before attempt ``attempt + 1``: full jitter over an exponentially growing window."""
    window = min(cap.total_seconds(), base.total_seconds() * 2 ** max(0, attempt - 1))
    return timedelta(seconds=random.uniform(window / 2, window))


# A throttled request waits about this long: the provider's window is a second or so.
THROTTLED_DELAY = timedelta(seconds=2)


def throttled_delay() -> timedelta:
    """Delay before retrying a request the provider throttled: a few seconds, jittered."""
    seconds = THROTTLED_DELAY.total_seconds()
    return timedelta(seconds=random.uniform(seconds / 2, seconds * 2))
