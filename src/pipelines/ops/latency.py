"""Provider call timings: recorded in memory per process, pushed to Redis, read per minute.

``record`` is called around every provider call (a lock and an append); a worker
middleware calls ``flush`` after each message, which pushes what it holds in one pipelined
round trip to ``<namespace>:__provider_latency__:<channel>:<minute>`` (milliseconds, kept
``KEEP_SECONDS``). The sampler reads a minute's lists with ``read_minute`` once it is over.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime

import redis

KEY = "__provider_latency__"
KEEP_SECONDS = 2 * 3600  # long enough for a sampler that was down for a while to catch up
# A process never holds more than this many timings per minute, nor more than this many
# minutes, between two flushes (the newest kept; a process that never flushes, such as an
# embedded worker, stays bounded).
MAX_PENDING = 10_000
MAX_MINUTES = 10

_pending: dict[tuple[str, str], list[float]] = defaultdict(list)
_lock = threading.Lock()


def minute_key(moment: datetime) -> str:
    """The UTC minute ``moment`` falls in, as the key suffix (``202612011403``)."""
    return moment.strftime("%Y%m%d%H%M")


def record(channel: str, seconds: float, now: datetime) -> None:
    """Remember one provider call of ``channel`` that took ``seconds``, ending at ``now``."""
    with _lock:
        pending = _pending[(channel, minute_key(now))]
        pending.append(round(seconds * 1000, 3))
        if len(pending) > MAX_PENDING:
            del pending[: len(pending) - MAX_PENDING]
        while len(_pending) > MAX_MINUTES:
            del _pending[min(_pending, key=lambda key: key[1])]


def drain() -> dict[tuple[str, str], list[float]]:
    """Take every timing this process holds, by (channel, minute)."""
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    return taken


def flush(client: redis.Redis, namespace: str) -> int:
    """Push this process's timings to Redis; how many. Lost (not retried) if Redis fails."""
    taken = drain()
    if not taken:
        return 0
    pipe = client.pipeline(transaction=False)
    for (channel, minute), values in taken.items():
        key = f"{namespace}:{KEY}:{channel}:{minute}"
        pipe.rpush(key, *values)
        pipe.expire(key, KEEP_SECONDS)
    pipe.execute()
    return sum(len(v) for v in taken.values())


def read_minute(
    client: redis.Redis, namespace: str, minute: datetime, channels: tuple[str, ...]
) -> dict[str, list[float]]:
    """Each channel's timings (ms) of one minute, as pushed by every worker."""
    pipe = client.pipeline(transaction=False)
    for channel in channels:
        pipe.lrange(f"{namespace}:{KEY}:{channel}:{minute_key(minute)}", 0, -1)
    return {
        channel: [float(v) for v in values]
        for channel, values in zip(channels, pipe.execute(), strict=True)
        if values
    }


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-int(fraction * 1000) * len(ordered) // 1000)))
    return ordered[rank - 1]
