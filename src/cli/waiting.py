"""Waiting for bulk runs to finish, with a progress bar on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.pipelines import reports

from .common import err_console


def wait_for_runs(
    session_factory: sessionmaker[Session],
    run_ids: Iterable[int],
    *,
    label: str = "Inviting",
    timeout: float | None = None,
    poll_seconds: float = 0.2,
) -> bool:
    """Show progress until every run is completed; False if ``timeout`` ran out first."""
    run_ids = list(run_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
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
            time.sleep(poll_seconds)


def run_and_wait(
    config: Settings,
    session_factory: sessionmaker[Session],
    run_id: int,
    enqueue: Callable[[], object],
    *,
    wait: bool = True,
    timeout: float = 3600.0,
) -> bool:
    """Enqueue a committed run's messages and (optionally) wait for it to finish.

    With the embedded broker a worker runs inside this process until the run is done, as
    nothing else could take the messages.
    """
    if config.embedded_broker:
        from portalflow.workers.embedded import embedded_worker

        with embedded_worker():
            enqueue()
            return wait_for_runs(session_factory, [run_id], timeout=timeout)
    enqueue()
    return wait and wait_for_runs(session_factory, [run_id])
