"""A no-op actor for measuring Dramatiq itself: ``dramatiq bench.noop_actors:broker``.

The broker is built from PORTALFLOW_BROKER_URL by the same ``make_broker`` as
``portalflow.workers`` (same broker class, same middleware), so the only difference from
our actors is the work. Each message does one Redis INCR, the least a benchmark needs to
see that it was done.
"""

from __future__ import annotations

import dramatiq
from dramatiq import Actor, Broker

from portalflow.config import Settings
from portalflow.workers.broker import make_broker

QUEUE = "bench-noop"
COUNTER = "bench:noop:done"


def declare(on: Broker) -> Actor:
    """The no-op actor declared on ``on`` (a Redis broker: it counts with INCR)."""

    @dramatiq.actor(queue_name=QUEUE, max_retries=0, broker=on)
    def noop() -> None:
        on.client.incr(COUNTER)  # type: ignore[attr-defined]

    return noop


# The worker processes' broker; the CLI is pointed at it by name (":broker").
broker = make_broker(Settings.from_env())
noop = declare(broker)
