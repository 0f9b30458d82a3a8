"""What is in Dramatiq's Redis broker: per queue counts, live workers, dead letters.

Read straight from the keys Dramatiq's Redis broker writes (see ``dramatiq/brokers/redis/
dispatch.lua``), so no Dramatiq worker or broker object is needed, only a Redis client:

- ``<ns>:<queue>``: list of the ids of messages ready to be fetched;
- ``<ns>:<queue>.msgs``: hash id -> body of every message of the queue not yet acked
  (ready or fetched);
- ``<ns>:<queue>.DQ`` / ``<ns>:<queue>.DQ.msgs``: the same for delayed messages (retries
  with backoff, ``send_with_options(delay=...)``); a worker fetches them early and holds
  them until their eta, so the hash is the count;
- ``<ns>:<queue>.XQ`` / ``<ns>:<queue>.XQ.msgs``: sorted set (by time dead-lettered, in ms)
  and hash of the dead-lettered messages, kept for ``dead_message_ttl`` (7 days);
- ``<ns>:__acks__.<broker id>.<queue>``: set of ids fetched by that worker, not yet acked;
- ``<ns>:__heartbeats__``: sorted set broker id -> last heartbeat (ms). Every broker that
  talks to Redis beats there, producers (the web app) as well as workers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

DEFAULT_NAMESPACE = "dramatiq"
# Dramatiq's default heartbeat timeout: a broker silent for longer is dead.
HEARTBEAT_TIMEOUT_MS = 60_000
# The queues portalflow's actors use (src/workers/*actors.py); others found in Redis are added.
KNOWN_QUEUES = ("invitations", "maintenance", "provider-events", "crm-events", "webhooks")

_SUFFIXES = (".DQ.msgs", ".XQ.msgs", ".msgs", ".DQ", ".XQ")

_RETRY = """
if redis.call("zrem", KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call("hdel", KEYS[2], ARGV[1])
redis.call("hset", KEYS[4], ARGV[1], ARGV[2])
redis.call("rpush", KEYS[3], ARGV[1])
return 1
"""

_DISCARD = """
if redis.call("zrem", KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call("hdel", KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class QueueCounts:
    queue: str
    ready: int
    delayed: int
    in_progress: int
    dead: int


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str  # the Redis message id (the key in .XQ), what retry/discard take
    actor: str
    args: str
    retries: int
    dead_at: datetime


@dataclass(frozen=True)
class QueueSnapshot:
    namespace: str
    queues: list[QueueCounts]
    workers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "queues": [asdict(q) for q in self.queues],
            "workers": len(self.workers),
            "worker_ids": list(self.workers),
        }


def client_from_url(url: str) -> redis.Redis:
    """A Redis client on a ``redis://`` / ``rediss://`` / ``unix://`` broker URL."""
    return redis.Redis.from_url(url)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _queue_of(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def discover_queues(client: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> set[str]:
    """Every queue name that has a key in the namespace."""
    prefix = f"{namespace}:"
    found: set[str] = set()
    for raw in client.scan_iter(match=f"{prefix}*", count=500):
        name = _text(raw)[len(prefix) :]
        if name.startswith("__"):
            if name.startswith("__acks__."):
                _, _, queue = name[len("__acks__.") :].partition(".")
                if queue:
                    found.add(_queue_of(queue))
            continue
        found.add(_queue_of(name))
    return found


def _in_progress(client: redis.Redis, namespace: str) -> dict[str, int]:
    """Per canonical queue, the ids fetched by some worker and not acked (not .DQ)."""
    counts: dict[str, int] = {}
    prefix = f"{namespace}:__acks__."
    for raw in client.scan_iter(match=f"{prefix}*", count=500):
        key = _text(raw)
        _, _, queue = key[len(prefix) :].partition(".")
        if not queue or queue.endswith(".DQ"):
            continue  # delayed messages held until their eta are counted as delayed
        counts[queue] = counts.get(queue, 0) + int(client.scard(key))
    return counts


def live_workers(
    client: redis.Redis,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
) -> list[str]:
    """Ids of the brokers that beat within the heartbeat timeout (workers and producers)."""
    now = int(time.time() * 1000)
    ids = client.zrangebyscore(f"{namespace}:__heartbeats__", now - heartbeat_timeout_ms, "+inf")
    return sorted(_text(i) for i in ids)


def snapshot(
    client: redis.Redis,
    namespace: str = DEFAULT_NAMESPACE,
    queues: Iterable[str] = (),
) -> QueueSnapshot:
    """Ready, delayed, in-progress and dead counts of each queue, and the live workers.

    ``queues`` are always listed (zeros when empty); queues found in Redis are added.
    """
    names = set(queues) | set(KNOWN_QUEUES) | discover_queues(client, namespace)
    in_progress = _in_progress(client, namespace)
    pipe = client.pipeline(transaction=False)
    ordered = sorted(names)
    for name in ordered:
        full = f"{namespace}:{name}"
        pipe.llen(full)
        pipe.hlen(f"{full}.DQ.msgs")
        pipe.zcard(f"{full}.XQ")
    results = pipe.execute()
    counts = [
        QueueCounts(
            queue=name,
            ready=int(results[3 * i]),
            delayed=int(results[3 * i + 1]),
            in_progress=in_progress.get(name, 0),
            dead=int(results[3 * i + 2]),
        )
        for i, name in enumerate(ordered)
    ]
    return QueueSnapshot(namespace, counts, live_workers(client, namespace))


def dead_letters(
    client: redis.Redis,
    queue: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    limit: int = 50,
) -> list[DeadLetter]:
    """The newest ``limit`` dead-lettered messages of ``queue``."""
    xq = f"{namespace}:{queue}.XQ"
    entries = client.zrevrange(xq, 0, limit - 1, withscores=True)
    if not entries:
        return []
    bodies = client.hmget(f"{xq}.msgs", [i for i, _ in entries])
    letters = []
    for (raw_id, score), body in zip(entries, bodies, strict=True):
        actor, args, retries = "?", "", 0
        if body is not None:
            try:
                message = _decode(body)
                actor = str(message["actor_name"])
                args = ", ".join(
                    [repr(a) for a in message.get("args", [])]
                    + [f"{k}={v!r}" for k, v in message.get("kwargs", {}).items()]
                )
                retries = int(message.get("options", {}).get("retries", 0))
            except Exception:  # an undecodable body is still listed so it can be discarded
                actor = "(undecodable)"
        letters.append(
            DeadLetter(
                queue=queue,
                message_id=_text(raw_id),
                actor=actor,
                args=args[:200],
                retries=retries,
                dead_at=datetime.fromtimestamp(score / 1000, tz=UTC),
            )
        )
    return letters


def retry_dead(
    client: redis.Redis, queue: str, message_id: str, namespace: str = DEFAULT_NAMESPACE
) -> bool:
    """Move a dead-lettered message back to the end of its queue, as Dramatiq's enqueue does.

    Its retry count is reset (the actor gets its usual retries again). False when the
    message is not (or no longer) dead-lettered.
    """
    xq = f"{namespace}:{queue}.XQ"
    body = client.hget(f"{xq}.msgs", message_id)
    if body is None:
        return False
    try:
        message = _decode(body)
        options = message.get("options", {})
        options = {k: v for k, v in options.items() if k not in ("eta", "traceback")}
        body = _encode(message | {"queue_name": queue, "options": options | {"retries": 0}})
    except Exception:
        pass  # put it back as it was
    full = f"{namespace}:{queue}"
    moved = client.eval(_RETRY, 4, xq, f"{xq}.msgs", full, f"{full}.msgs", message_id, body)
    return bool(moved)


def discard_dead(
    client: redis.Redis, queue: str, message_id: str, namespace: str = DEFAULT_NAMESPACE
) -> bool:
    """Delete a dead-lettered message for good. False when it is not dead-lettered."""
    xq = f"{namespace}:{queue}.XQ"
    return bool(client.eval(_DISCARD, 2, xq, f"{xq}.msgs", message_id))


# Dramatiq's default JSON encoding of a message (``dramatiq.encoder.JSONEncoder``), read and
# written here without importing Dramatiq: pipelines stay free of the broker library.
def _decode(body: bytes | str) -> dict[str, Any]:
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a Dramatiq message is a JSON object")
    return message


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")
