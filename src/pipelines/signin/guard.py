"""Rate limits and lockout for signing in: the numbers, and the counting.

Counted over a moving window (the ``limits`` library), in the Redis shared by every web
process, or this process's memory in the embedded mode:

- **per client address**, every sign-in, code request, forgot-password request and reset:
  20 a minute and 200 an hour;
- **per account** (the portal and the email or number typed, whether or not such a user
  exists, so the answer tells nothing): 5 failed sign-ins in 15 minutes, or 20 in a day,
  lock the account out until the window has moved on; a correct password is refused too
  while it is locked, so a guesser learns nothing from the lockout; a success clears the
  failures;
- **messages per account**: 3 codes or reset messages in 15 minutes and 10 a day, so nobody
  can spend an org's SMS credits or flood an inbox.

A one-time code has 6 digits: with 5 tries per 15 minutes and a code valid for 10 minutes,
one code falls to a guesser with a chance of 5 in a million.

With the store unreachable the guard fails open (logged): sign-in keeps working, and an
outage of minutes gives a guesser a few hundred tries at most.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

KEY_PREFIX = "portalflow-signin"


@dataclass(frozen=True)
class SignInRules:
    """The limits in the ``limits`` notation ("N/minute", "N/15 minutes", "N/day")."""

    per_client: tuple[str, ...] = ("20/minute", "200/hour")
    failures_per_account: tuple[str, ...] = ("5/15 minutes", "20/day")
    messages_per_account: tuple[str, ...] = ("3/15 minutes", "10/day")


DEFAULT_RULES = SignInRules()


def account_key(portal_slug: str, login: str) -> str:
    """The counter key of one account: a digest, so Redis holds no address or number."""
    text = f"{portal_slug.strip().lower()}\n{login.strip().casefold()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class SignInGuard:
    """Per-client, per-account failure and per-account message counters over one storage."""

    def __init__(
        self, storage: Storage, rules: SignInRules = DEFAULT_RULES, namespace: str = KEY_PREFIX
    ) -> None:
        self.rules = rules
        self.namespace = namespace
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_client = _items(rules.per_client)
        self._failures = _items(rules.failures_per_account)
        self._messages = _items(rules.messages_per_account)

    @classmethod
    def from_url(cls, redis_url: str, rules: SignInRules = DEFAULT_RULES) -> SignInGuard:
        """Redis when a URL is given (shared by every process), else in-process memory."""
        if not redis_url:
            return cls.in_memory(rules)
        if redis_url.startswith("unix://"):  # limits names a Redis socket "redis+unix://"
            redis_url = "redis+" + redis_url
        storage = storage_from_string(redis_url, socket_timeout=2, socket_connect_timeout=2)
        return cls(storage, rules)

    @classmethod
    def in_memory(cls, rules: SignInRules = DEFAULT_RULES) -> SignInGuard:
        """Counters of this process only (the embedded mode, tests)."""
        return cls(storage_from_string("memory://"), rules, f"{KEY_PREFIX}-{uuid.uuid4().hex}")

    def admit_client(self, client: str) -> int | None:
        """Count one request from ``client``; None when allowed, else seconds to wait."""
        return self._hit(self._per_client, "client", client)

    def locked_out(self, account: str) -> int | None:
        """Seconds until ``account`` may try again after its failures; None if it may now."""
        try:
            for item in self._failures:
                if not self._limiter.test(item, self.namespace, "failures", account):
                    return self._wait(item, "failures", account)
        except Exception:
            log.warning("sign-in limiter unavailable; attempt allowed", exc_info=True)
        return None

    def record_failure(self, account: str) -> None:
        """Count one failed sign-in of ``account``."""
        self._hit(self._failures, "failures", account)

    def record_success(self, account: str) -> None:
        """A successful sign-in forgets the account's failures."""
        try:
            for item in self._failures:
                self._limiter.clear(item, self.namespace, "failures", account)
        except Exception:
            log.warning("sign-in limiter unavailable; failures not cleared", exc_info=True)

    def admit_message(self, account: str) -> int | None:
        """Count one code or reset message for ``account``; None when it may be sent."""
        return self._hit(self._messages, "messages", account)

    def _hit(self, items: list[RateLimitItem], kind: str, value: str) -> int | None:
        try:
            for item in items:
                if not self._limiter.hit(item, self.namespace, kind, value):
                    return self._wait(item, kind, value)
        except Exception:
            log.warning("sign-in limiter unavailable; request allowed", exc_info=True)
        return None

    def _wait(self, item: RateLimitItem, kind: str, value: str) -> int:
        stats = self._limiter.get_window_stats(item, self.namespace, kind, value)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _items(rules: tuple[str, ...]) -> list[RateLimitItem]:
    return [item for rule in rules for item in parse_many(rule)]
