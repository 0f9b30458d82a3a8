"""Counting requests to the recipient's links, shared by every web process through Redis.

The store is the Redis of ``PORTALFLOW_RATE_LIMIT_REDIS_URL``, else the Redis broker's
(:attr:`Settings.send_rate_redis_url`); with neither (the embedded mode) it is this
process's memory. The numbers are :mod:`.link_rate_rules`; the counting is the ``limits``
library's moving window.

    >>> throttle = Throttle.from_settings(settings)
    >>> throttle.hit("203.0.113.9", token)       # None, or seconds to wait
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

from portalflow.config import Settings

from .link_rate_rules import DEFAULT_RULES, LinkRateRules

log = logging.getLogger(__name__)

KEY_PREFIX = "portalflow-links"


@dataclass
class Throttle:
    """Per-client and per-token request counters over one storage."""

    storage: Storage
    rules: LinkRateRules = DEFAULT_RULES
    namespace: str = KEY_PREFIX

    def __post_init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._per_client = _items(self.rules.per_client)
        self._per_token = _items(self.rules.per_token)

    @classmethod
    def from_settings(
        cls, settings: Settings, rules: LinkRateRules = DEFAULT_RULES, namespace: str = KEY_PREFIX
    ) -> Throttle:
        """Redis when one is configured (shared by every process), else in-process memory."""
        return cls(_storage(settings.send_rate_redis_url), rules, namespace)

    @classmethod
    def in_memory(cls, rules: LinkRateRules = DEFAULT_RULES) -> Throttle:
        """Counters of this process only (the embedded mode)."""
        return cls(storage_from_string("memory://"), rules, f"{KEY_PREFIX}-{uuid.uuid4().hex}")

    def hit(self, client: str, token: str | None) -> int | None:
        """Count one request; None when allowed, else the seconds until it would be."""
        checks = [(item, ("client", client)) for item in self._per_client]
        if token:
            # Only a digest goes to Redis: the keys must not hold usable tokens.
            digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]
            checks += [(item, ("token", digest)) for item in self._per_token]
        try:
            for item, (kind, value) in checks:
                if not self._limiter.hit(item, self.namespace, kind, value):
                    return self._retry_after(item, kind, value)
        except Exception:
            # Fail open: with Redis down the pages still work; tokens are long enough that
            # the minutes of an outage give a guesser nothing.
            log.warning("link rate limiter unavailable; request allowed", exc_info=True)
        return None

    def _retry_after(self, item: RateLimitItem, kind: str, value: str) -> int:
        stats = self._limiter.get_window_stats(item, self.namespace, kind, value)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _items(rules: tuple[str, ...]) -> list[RateLimitItem]:
    return [item for rule in rules for item in parse_many(rule)]


def _storage(redis_url: str) -> Storage:
    if not redis_url:
        return storage_from_string("memory://")
    # limits names a Redis socket "redis+unix://"; redis-py (and our settings) "unix://".
    if redis_url.startswith("unix://"):
        redis_url = "redis+" + redis_url
    return storage_from_string(redis_url, socket_timeout=2, socket_connect_timeout=2)
