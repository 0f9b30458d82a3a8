"""Waiting for bulk runs to finish, with a progress bar on stderr.

With a broker in another process (Redis, RabbitMQ) nothing here can take the messages: if
no worker is seen within a few seconds the command says so and how to start one, and
gives up (exit code 3) once ``worker_wait`` seconds pass with still none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import dramatiq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.pipelines.ops import reports
from portalflow.workers import queue_stats
from portalflow.workers.embedded import embedded_worker

from .common import err_console, fail

# The run is queued, but no worker took it up while the command waited.
EXIT_NO_WORKER = 3
# Said this long after the enqueue when no worker is seen (sooner if worker_wait is shorter).
WORKER_NOTICE_SECONDS = 5.0
DEFAULT_WORKER_WAIT_SECONDS = 10.0
# A live worker polls its idle queues at least every second; each poll is a heartbeat.
WORKER_HEARTBEAT_WINDOW_MS = 10_000
INVITATIONS_QUEUE = "invitations"

WORKER_HELP = (
    "Start one with `portalflow worker` (or `dramatiq portalflow.workers`) with the same "
    "PORTALFLOW_DATABASE_URL and PORTALFLOW_BROKER_URL."
)


def wait_for_runs(
    session_factory: sessionmaker[Session],
    run_ids: Iterable[int],
    *,
    label: str = "Inviting",
    timeout: float | None = None,
    poll_seconds: float = 0.2,
    worker_wait: float | None = None,
    queue: str = INVITATIONS_QUEUE,
) -> bool:
    """Show progress until every run is completed; False if ``timeout`` ran out first.

    With ``worker_wait`` set, watch for a worker (see :func:`worker_seen`): none within
    a few seconds is said on stderr; none within ``worker_wait`` seconds exits with
    :data:`EXIT_NO_WORKER`.
    """
    run_ids = list(run_ids)
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    watching, noticed = worker_wait is not None, False
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(label, total=None)
        while True:
            with session_factory() as session:
                decided, requested, done = reports.progress(session, run_ids)
            progress.update(task, completed=decided, total=requested)
            if done:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            if watching and worker_wait is not None:
                waited = time.monotonic() - started
                if decided or worker_seen(queue):
                    watching = False  # a worker is on it: wait for the run as before
                elif waited >= worker_wait:
                    progress.stop()
                    _give_up(run_ids, queue, worker_wait)
                elif not noticed and waited >= min(WORKER_NOTICE_SECONDS, worker_wait):
                    noticed = True
                    progress.console.print(
                        f"[bold yellow]warning:[/] no worker consumes the [bold]{queue}[/] "
                        f"queue. {WORKER_HELP} Waiting up to {worker_wait:g} s for one "
                        "(`--wait-for-worker SECONDS` to change that)."
                    )
            time.sleep(poll_seconds)


def worker_seen(queue: str = INVITATIONS_QUEUE) -> bool:
    """Whether a worker other than this process is known to serve the broker.

    Redis: some other broker beat within the last few seconds (a consuming worker polls
    at least every second). RabbitMQ: the queue has a consumer. Anything else, or a
    broker that cannot answer: assumed so, and the command waits as it always did.
    """
    broker = dramatiq.get_broker()
    try:
        from dramatiq.brokers.redis import RedisBroker

        if isinstance(broker, RedisBroker):
            beating = queue_stats.live_workers(
                broker.client,
                broker.namespace,
                heartbeat_timeout_ms=WORKER_HEARTBEAT_WINDOW_MS,
            )
            return any(broker_id != broker.broker_id for broker_id in beating)
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        if isinstance(broker, RabbitmqBroker):
            declared = broker.channel.queue_declare(queue=queue, durable=True, passive=True)
            return bool(declared.method.consumer_count)
    except Exception:  # an unreadable broker is no reason to stop waiting
        return True
    return True


def _give_up(run_ids: list[int], queue: str, worker_wait: float) -> None:
    runs = ", ".join(str(run_id) for run_id in run_ids)
    fail(
        f"no worker took bulk run {runs} within {worker_wait:g} s: none consumes the {queue} "
        f"queue. {WORKER_HELP} The run stays queued and goes on once a worker runs; "
        f"follow it with `portalflow bulk-runs show {run_ids[0]}`.",
        code=EXIT_NO_WORKER,
    )


def run_and_wait(
    config: Settings,
    session_factory: sessionmaker[Session],
    start: Callable[[], int],
    *,
    wait: bool = True,
    timeout: float = 3600.0,
    worker_wait: float = DEFAULT_WORKER_WAIT_SECONDS,
) -> tuple[int, bool]:
    """Start a run with ``start`` (it records, commits and enqueues, and returns the run's id),
    then (optionally) wait for it to finish; (run id, finished).

    With the embedded broker a worker runs inside this process until the run is done, as
    nothing else could take the messages. With another broker, no worker seen within
    ``worker_wait`` seconds exits with :data:`EXIT_NO_WORKER`.
    """
    if config.embedded_broker:
        with embedded_worker():
            run_id = start()
            return run_id, wait_for_runs(session_factory, [run_id], timeout=timeout)
    run_id = start()
    return run_id, wait and wait_for_runs(session_factory, [run_id], worker_wait=worker_wait)
