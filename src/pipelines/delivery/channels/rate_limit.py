"""Provider send-rate limits: one evenly spaced schedule per channel, shared through Redis.

A limiter hands out send slots ``1/rate`` seconds apart (GCRA with no burst): each
caller reserves the next free slot and sleeps until it, so a provider counting requests
in any sliding 1 s window sees at most ``rate`` of them, however many threads, processes
or machines share the schedule. Nobody is refused: a busy schedule only means a longer
sleep. The Redis schedule is one key updated by a Lua script on Redis's own clock, so
the machines' clocks need not agree.

A sender wakes a little after its slot (its thread waits for the GIL, its process for a
core), and senders that stalled together (a paused process) would resume together. So
before it sends, a sender is also admitted against the provider's own rule: at most
``rate`` requests (rounded down) in any sliding second of departures, counted on the same
clock; a sender over it waits for the oldest to leave the window. A late sender therefore
still uses its slot (none is wasted) and no burst exceeds the quota. Requests cross the
network after they leave, so set the rate a few percent under the provider's quota.

    >>> limiter = LocalSendRate(50)  # 50 requests/s: slots 20 ms apart
    >>> first, second = limiter.acquire(), limiter.acquire()
    >>> round(second.at - first.at, 3)
    0.02
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import redis

from portalflow.config import Settings
from portalflow.models import OutcomeCode

from .base import SendFailure
from .sms_base import LookupUnavailable

KEY_PREFIX = "portalflow:send-rate"
TIMEOUT = 5.0  # seconds; a limiter that cannot answer fails the send as temporary
WINDOW_US = 1_000_000  # the sliding window of departures a provider's quota counts

# KEYS[1]: the schedule (the next free slot, microseconds on Redis's clock).
# ARGV[1]: the spacing in microseconds. Returns {slot, now}; the key expires once idle.
RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local following = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', following), 'PX',
           math.ceil((following - now) / 1000) + 1000)
return {string.format('%d', slot), string.format('%d', now)}
"""

# KEYS[1]: departures in the last window (a sorted set scored by microseconds on Redis's
# clock). ARGV: the most departures a window may hold, the window (us), a unique member.
# Returns 0 when admitted (the departure is recorded), else microseconds to wait.
ADMIT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)


@dataclass(frozen=True)
class Slot:
    """A reserved send time: ``at`` on the limiter's clock (seconds), ``wait`` from now."""

    at: float
    wait: float


class SendRate:
    """A schedule of slots ``1/rate`` s apart; subclasses say where the next free one is kept."""

    def __init__(self, rate: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"a send rate must be a positive number per second, got {rate!r}")
        self.rate = rate
        # Rounded up: the spacing never makes the rate a hair above the one asked for.
        self.interval_us = math.ceil(1_000_000 / rate)
        self.per_window = max(1, math.floor(rate))
        self._sleep = sleep

    def acquire(self) -> Slot:
        """Reserve the next slot, sleep until it comes, then wait for the window's admission."""
        slot = self.reserve()
        if slot.wait > 0:
            self._sleep(slot.wait)
        while (wait_us := self.admit()) > 0:
            self._sleep(wait_us / 1e6)
        return slot

    def reserve(self) -> Slot:
        """Take the next free slot without waiting for it."""
        raise NotImplementedError

    def admit(self) -> int:
        """Record a departure now if the window has room (0), else the microseconds to wait."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


class LocalSendRate(SendRate):
    """The schedule in this process only: for the embedded mode (one process)."""

    def __init__(self, rate: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(rate, sleep=sleep)
        self._lock = threading.Lock()
        self._next_us = 0
        self._departures: deque[int] = deque()

    def reserve(self) -> Slot:
        now = time.monotonic_ns() // 1000
        with self._lock:
            slot = max(self._next_us, now)
            self._next_us = slot + self.interval_us
        return Slot(at=slot / 1e6, wait=(slot - now) / 1e6)

    def admit(self) -> int:
        now = time.monotonic_ns() // 1000
        with self._lock:
            departures = self._departures
            while departures and departures[0] <= now - WINDOW_US:
                departures.popleft()
            if len(departures) < self.per_window:
                departures.append(now)
                return 0
            return max(1, departures[0] + WINDOW_US - now)


class RedisSendRate(SendRate):
    """The schedule in one Redis key, shared by every process and machine that uses it."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, sleep=sleep)
        self.client = client
        self.key = key
        self._reserve = client.register_script(RESERVE)
        self._admit = client.register_script(ADMIT)

    def reserve(self) -> Slot:
        slot_us, now_us = (int(value) for value in self._reserve([self.key], [self.interval_us]))
        return Slot(at=slot_us / 1e6, wait=(slot_us - now_us) / 1e6)

    def admit(self) -> int:
        member = uuid.uuid4().hex
        return int(self._admit([f"{self.key}:sent"], [self.per_window, WINDOW_US, member]))

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class SendRates:
    """The limiter of each kind of channel; None: that kind is not limited."""

    email: SendRate | None = None
    sms: SendRate | None = None

    def close(self) -> None:
        for limiter in (self.email, self.sms):
            if limiter is not None:
                limiter.close()


def send_rates(settings: Settings, *, key_prefix: str = KEY_PREFIX) -> SendRates:
    """The limiters the settings ask for: in Redis when there is one, else in this process."""
    wanted = {"email": settings.email_max_send_rate, "sms": settings.sms_max_send_rate}
    if not any(wanted.values()):
        return SendRates()
    url = settings.send_rate_redis_url
    client = (
        redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        if url
        else None
    )
    limiters: dict[str, SendRate | None] = {}
    for kind, rate in wanted.items():
        if not rate:
            limiters[kind] = None
        elif client is None:
            limiters[kind] = LocalSendRate(rate)
        else:
            limiters[kind] = RedisSendRate(client, f"{key_prefix}:{kind}", rate)
    return SendRates(**limiters)


class _Channel(Protocol[M_contra]):
    name: str

    def send(self, message: M_contra, /) -> str: ...

    def close(self) -> None: ...


class Paced(Generic[M]):
    """A channel whose every provider request waits for a slot of ``limiter`` first."""

    def __init__(self, channel: _Channel[M], limiter: SendRate) -> None:
        self.channel = channel
        self.limiter = limiter
        self.name = channel.name

    def send(self, message: M) -> str:
        """Wait for a slot, then send; a limiter out of reach fails the send as temporary."""
        try:
            self.limiter.acquire()
        except redis.RedisError as exc:
            raise SendFailure(
                OutcomeCode.CONNECTION_ERROR,
                f"send-rate limiter: {type(exc).__name__}: {exc}",
                temporary=True,
            ) from exc
        return self.channel.send(message)

    def find_sent(self, to: str, since: datetime, matches: Callable[[str], bool]) -> str | None:
        """The wrapped SMS channel's lookup, not paced: the quota counts messages sent."""
        find_sent = getattr(self.channel, "find_sent", None)
        if find_sent is None:
            raise LookupUnavailable(f"{self.name} lookup: the channel has none")
        result: str | None = find_sent(to, since, matches)
        return result

    def close(self) -> None:
        self.channel.close()
