"""The Dramatiq broker named by PORTALFLOW_BROKER_URL: Redis, RabbitMQ or the in-process stub.

Dramatiq's own metrics: with ``dramatiq_prom_db`` set to a directory, Redis and RabbitMQ
brokers get Dramatiq's ``Prometheus`` middleware. Each worker process then counts messages,
errors, retries, rejects and durations per queue and actor in prometheus_client's
multiprocess files in that directory (and Dramatiq serves them per machine on
``dramatiq_prom_host:dramatiq_prom_port``, 0.0.0.0:9191 by default). Give the web app the
same directory (a shared volume) and its ``/metrics`` adds them to ours.
"""

from __future__ import annotations

import inspect
import os
import traceback
from typing import Any

import dramatiq
from dramatiq import Actor, Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, xq_name
from dramatiq.errors import ActorNotFound

from portalflow.config import Settings, SettingsError

from . import liveness, orphans

_actors: list[Actor] = []

# Dramatiq's variable (read by dramatiq.middleware.prometheus when it is imported).
PROMETHEUS_DIR_ENV = "dramatiq_prom_db"

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
CRM_EVENTS_QUEUE = "crm-events"
# Queues a caller waits on: an idle one is polled at least every `realtime_poll_ms`.
REALTIME_QUEUES = (CRM_EVENTS_QUEUE,)
RABBITMQ_SCHEMES = ("amqp://", "amqps://")


def make_broker(settings: Settings) -> Broker:
    """A broker for the settings: Redis, RabbitMQ or, when unset, embedded.

    Redis keys go under ``PORTALFLOW_BROKER_NAMESPACE`` (``dramatiq``): workers, producers
    and /ops of one deployment must agree on it; two deployments can share one Redis.

    ``amqp://`` / ``amqps://`` give Dramatiq's RabbitMQ broker with publisher confirms
    (``confirm_delivery``): ``send`` returns only once RabbitMQ has taken the message. Its
    queues are durable and its messages persistent (``delivery_mode=2``), Dramatiq's defaults.
    """
    url = settings.broker_url
    if not url:
        return StubBroker()
    if url.startswith(REDIS_SCHEMES):
        polls = dict.fromkeys(REALTIME_QUEUES, settings.realtime_poll_ms)
        redis_broker = PollingRedisBroker(polls, url=url, namespace=settings.broker_namespace)
        broker = with_metrics(with_dead_letter_errors(redis_broker))
        return with_process_guards(broker)
    if url.startswith(RABBITMQ_SCHEMES):
        # Imported here so that pika is only needed by deployments that use RabbitMQ.
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        rabbitmq = RabbitmqBroker(url=url, confirm_delivery=True)
        return with_process_guards(with_metrics(with_dead_letter_errors(rabbitmq)))
    scheme = url.split(":", 1)[0]  # never echo the rest: it may hold a password
    supported = ", ".join(REDIS_SCHEMES + RABBITMQ_SCHEMES)
    raise SettingsError(
        f"PORTALFLOW_BROKER_URL: unsupported scheme {scheme!r}; use one of {supported} "
        "(e.g. redis://host:6379/0 or amqp://user:pass@host:5672/vhost), or leave it unset "
        "for the in-process broker"
    )


class PollingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, with a shorter idle back-off on some queues.

    A Redis consumer that finds its queue empty sleeps ever longer between polls, up to the
    worker timeout (1 s by default): on a queue whose messages a caller is waiting for,
    that sleep is the latency. The queues named here (and their delay queues) cap it at
    their own value instead, at the cost of a poll (one Lua call) every few milliseconds
    per idle queue and worker process.
    """

    def __init__(self, idle_poll_ms: dict[str, int], **options: Any) -> None:
        super().__init__(**options)
        self.idle_poll_ms = {**idle_poll_ms, **{dq_name(q): ms for q, ms in idle_poll_ms.items()}}

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        timeout = min(timeout, self.idle_poll_ms.get(queue_name, timeout))
        return super().consume(queue_name, prefetch, timeout)


def with_metrics(broker: Broker) -> Broker:
    """Add Dramatiq's Prometheus middleware when ``dramatiq_prom_db`` is set."""
    if os.environ.get(PROMETHEUS_DIR_ENV):
        # Made only then: importing Dramatiq's module creates the directory. It counts only in
        # `dramatiq` worker processes (their boot sets PROMETHEUS_MULTIPROC_DIR before
        # prometheus_client is imported); producers such as the web app never touch it.
        broker.add_middleware(orphans.prometheus_middleware())
    return broker


def with_process_guards(broker: Broker) -> Broker:
    """Worker processes exit with their parent, leave a liveness file for healthchecks and,
    on Redis, register as consumers for /ops."""
    broker.add_middleware(orphans.ExitWithParent())
    broker.add_middleware(liveness.Liveness())
    broker.add_middleware(liveness.ConsumerRegistry())
    broker.add_middleware(liveness.LatencyFlush())
    return broker


def register(actor: Actor) -> Actor:
    """Remember one of our actors so ``install`` can move it to another broker."""
    _actors.append(actor)
    return actor


def install(broker: Broker) -> Broker:
    """Make ``broker`` the global broker and re-declare every portalflow actor on it."""
    dramatiq.set_broker(broker)
    for actor in _actors:
        actor.broker = broker
        broker.declare_actor(actor)
    return broker


def queue_names() -> set[str]:
    return {actor.queue_name for actor in _actors}


def with_dead_letter_errors(broker: Broker) -> Broker:
    """Add `DeadLetterErrors`: a dead-lettered message keeps the error that put it there."""
    broker.add_middleware(DeadLetterErrors())
    return broker


class DeadLetterErrors(Middleware):
    """Record on a message why it failed, and send a malformed one straight to the DLQ.

    Dramatiq's ``Retries`` stores a traceback only when it retries: a message failed by one
    of its actor's ``throws`` (our ``MalformedMessage``) reaches the dead-letter queue with
    no error at all, and one whose arguments do not fit the actor's signature is retried,
    with backoff, for minutes. Here every failure's error goes into the message's options
    (``error``, ``traceback``), arguments that cannot bind fail the message at once, and on
    Redis the dead-lettered copy (``<namespace>:<queue>.XQ.msgs``) is rewritten with them.
    On RabbitMQ the dead-letter exchange keeps the message as it was first published.
    """

    def __init__(self) -> None:
        self._signatures: dict[str, inspect.Signature] = {}

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        try:
            actor = broker.get_actor(message.actor_name)
        except ActorNotFound:
            return
        signature = self._signatures.setdefault(actor.actor_name, inspect.signature(actor.fn))
        try:
            signature.bind(*message.args, **message.kwargs)
        except TypeError as exc:
            message.options["error"] = f"MalformedMessage: {actor.actor_name}: {exc}"
            message.fail()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None:
            message.options["error"] = f"{type(exception).__name__}: {exception}"
            message.options["traceback"] = "".join(traceback.format_exception(exception))

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        if not isinstance(broker, RedisBroker) or "error" not in message.options:
            return
        key = f"{broker.namespace}:{xq_name(message.queue_name)}.msgs"
        message_id = message.options.get("redis_message_id")
        if message_id and broker.client.hexists(key, message_id):
            broker.client.hset(key, message_id, message.encode())
