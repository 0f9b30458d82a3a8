"""The Dramatiq broker: Redis from PORTALFLOW_BROKER_URL, or the in-process stub broker."""

from __future__ import annotations

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from portalflow.config import Settings, SettingsError

_actors: list[Actor] = []


def make_broker(settings: Settings) -> Broker:
    """A broker for the settings: ``redis://`` / ``rediss://`` or, when unset, embedded."""
    url = settings.broker_url
    if not url:
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBroker(url=url)
    raise SettingsError(f"PORTALFLOW_BROKER_URL={url!r}: only redis:// URLs are supported")


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
