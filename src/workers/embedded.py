"""The embedded mode: Dramatiq's in-process broker with a real worker, in this process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from .broker import install

EMBEDDED_THREADS = 2


@contextmanager
def embedded_worker(threads: int = EMBEDDED_THREADS) -> Iterator[StubBroker]:
    """Install a fresh in-process broker with our actors and run a worker on it until exit."""
    broker = StubBroker()
    install(broker)
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    try:
        yield broker
    finally:
        worker.stop()
        broker.close()
