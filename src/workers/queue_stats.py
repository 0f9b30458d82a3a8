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
  talks to Redis beats there, producers (the web app, the CLI, the scheduler) as well as
  workers, so a heartbeat alone does not make a worker;
- ``<ns>:__consumers__`` (ours, not Dramatiq's): hash broker id -> JSON (host, pid, queues,
  threads, started) that each worker process writes when it boots and deletes when it
  stops (``portalflow.workers.liveness.ConsumerRegistry``). A *live worker* is an entry of
  it whose broker beat within the heartbeat timeout.
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
CONSUMERS_KEY = "__consumers__"
# A registered consumer silent this long is dropped from the list (a crashed process).
FORGET_CONSUMER_MS = 24 * 3600 * 1000

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
    error: str = ""  # what DeadLetterErrors stored: "ExceptionType: message"
    traceback: str = ""


@dataclass(frozen=True)
class Consumer:
    """One worker process that consumes queues, as it registered itself."""

    broker_id: str
    host: str
    pid: int
    queues: list[str]
    threads: int
    started_at: datetime | None
    last_heartbeat: datetime | None
    live: bool


@dataclass(frozen=True)
class QueueSnapshot:
    namespace: str
    queues: list[QueueCounts]
    workers: list[str] = field(default_factory=list)  # broker ids of the live consumers
    consumers: list[Consumer] = field(default_factory=list)  # live ones first, then lost

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "queues": [asdict(q) for q in self.queues],
            "workers": len(self.workers),
            "worker_ids": list(self.workers),
            "consumers": [
                asdict(c)
                | {
                    "started_at": _iso(c.started_at),
                    "last_heartbeat": _iso(c.last_heartbeat),
                }
                for c in self.consumers
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


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


def consumers(
    client: redis.Redis,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
) -> list[Consumer]:
    """The registered worker processes, live ones (beating) first; producers never appear."""
    entries = client.hgetall(f"{namespace}:{CONSUMERS_KEY}")
    if not entries:
        return []
    ids = [_text(i) for i in entries]
    beats = client.zmscore(f"{namespace}:__heartbeats__", ids)
    now = int(time.time() * 1000)
    found = []
    for (raw_id, raw), beat in zip(entries.items(), beats, strict=True):
        try:
            info = _decode(raw)
        except ValueError:
            continue
        if beat is None or now - beat > FORGET_CONSUMER_MS:
            continue  # long gone (a killed process never deletes its entry)
        started = info.get("started_ms")
        found.append(
            Consumer(
                broker_id=_text(raw_id),
                host=str(info.get("host", "?")),
                pid=int(info.get("pid", 0)),
                queues=sorted(str(q) for q in info.get("queues", [])),
                threads=int(info.get("threads", 0)),
                started_at=_from_ms(started) if started else None,
                last_heartbeat=_from_ms(beat),
                live=now - beat <= heartbeat_timeout_ms,
            )
        )
    return sorted(found, key=lambda c: (not c.live, c.host, c.pid))


def _from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


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
    registered = consumers(client, namespace)
    live = sorted(c.broker_id for c in registered if c.live)
    return QueueSnapshot(namespace, counts, live, registered)


def dead_letters(
    client: redis.Redis,
    queue: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    limit: int = 50,
    actor: str | None = None,
) -> list[DeadLetter]:
    """The newest ``limit`` dead-lettered messages of ``queue`` (of ``actor`` only, if given).

    With ``actor``, up to ``SCAN_FOR_ACTOR`` of the newest letters are read to find them.
    """
    xq = f"{namespace}:{queue}.XQ"
    read = limit if actor is None else max(limit, SCAN_FOR_ACTOR)
    entries = client.zrevrange(xq, 0, read - 1, withscores=True)
    if not entries:
        return []
    bodies = client.hmget(f"{xq}.msgs", [i for i, _ in entries])
    letters = []
    for (raw_id, score), body in zip(entries, bodies, strict=True):
        letter = _letter(queue, _text(raw_id), score, body)
        if actor is None or letter.actor == actor:
            letters.append(letter)
    return letters[:limit]


# How many of a queue's newest dead letters a filter by actor reads.
SCAN_FOR_ACTOR = 1000
ERROR_CHARS = 2_000
TRACEBACK_CHARS = 20_000


def _letter(queue: str, message_id: str, score: float, body: bytes | None) -> DeadLetter:
    actor, args, retries, error, trace = "?", "", 0, "", ""
    if body is not None:
        try:
            message = _decode(body)
            actor = str(message["actor_name"])
            args = ", ".join(
                [repr(a) for a in message.get("args", [])]
                + [f"{k}={v!r}" for k, v in message.get("kwargs", {}).items()]
            )
            options = message.get("options", {})
            retries = int(options.get("retries", 0))
            error = str(options.get("error") or "")
            trace = str(options.get("traceback") or "")
        except Exception:  # an undecodable body is still listed so it can be discarded
            actor = "(undecodable)"
    if trace and not error:  # Dramatiq's Retries stores only the traceback: its last line
        error = trace.rstrip().rpartition("\n")[2]
    return DeadLetter(
        queue=queue,
        message_id=message_id,
        actor=actor,
        args=args[:200],
        retries=retries,
        dead_at=_from_ms(score),
        error=error[:ERROR_CHARS],
        traceback=trace[-TRACEBACK_CHARS:],
    )


def dead_actors(client: redis.Redis, queue: str, namespace: str = DEFAULT_NAMESPACE) -> set[str]:
    """The actors of a queue's newest ``SCAN_FOR_ACTOR`` dead letters (for the filter)."""
    letters = dead_letters(client, queue, namespace, limit=SCAN_FOR_ACTOR)
    return {letter.actor for letter in letters}


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


def _dead_ids(client: redis.Redis, queue: str, namespace: str, actor: str | None) -> list[str]:
    xq = f"{namespace}:{queue}.XQ"
    if actor is None:
        return [_text(i) for i in client.zrange(xq, 0, -1)]
    count = int(client.zcard(xq))
    return [
        letter.message_id
        for letter in dead_letters(client, queue, namespace, limit=count or 1, actor=actor)
    ]


def retry_all_dead(
    client: redis.Redis, queue: str, namespace: str = DEFAULT_NAMESPACE, actor: str | None = None
) -> int:
    """Put every dead letter of ``queue`` (of ``actor`` only, if given) back; how many."""
    return sum(
        retry_dead(client, queue, i, namespace) for i in _dead_ids(client, queue, namespace, actor)
    )


def discard_all_dead(
    client: redis.Redis, queue: str, namespace: str = DEFAULT_NAMESPACE, actor: str | None = None
) -> int:
    """Delete every dead letter of ``queue`` (of ``actor`` only, if given); how many."""
    return sum(
        discard_dead(client, queue, i, namespace)
        for i in _dead_ids(client, queue, namespace, actor)
    )


# Dramatiq's default JSON encoding of a message (``dramatiq.encoder.JSONEncoder``), read and
# written here without importing Dramatiq: pipelines stay free of the broker library.
def _decode(body: bytes | str) -> dict[str, Any]:
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a Dramatiq message is a JSON object")
    return message


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")
