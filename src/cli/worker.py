"""``portalflow worker``: Dramatiq worker processes for every portalflow actor."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from .common import fail, settings


def worker(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process.")] = 8,
    prefetch: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Messages each process reserves per queue (default: one per thread; "
            "Dramatiq's own default, two per thread, lets the first process hoard a run's "
            "chunks). `dramatiq_queue_prefetch` in the environment wins.",
        ),
    ] = None,
) -> None:
    """Run Dramatiq workers on the Redis broker named by `PORTALFLOW_BROKER_URL`.

    Same as `dramatiq_queue_prefetch=THREADS dramatiq portalflow.workers --processes N --threads
    THREADS`.
    Example: `PORTALFLOW_BROKER_URL=redis://127.0.0.1:6379/0 portalflow worker --processes 4`
    """
    if settings().embedded_broker:
        fail(
            "PORTALFLOW_BROKER_URL is not set: the embedded broker lives inside one process, "
            "so `portalflow invite` and `portalflow demo` run their own worker. "
            "Set PORTALFLOW_BROKER_URL=redis://HOST:6379/0 to run standalone workers."
        )
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "portalflow.workers",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    # Dramatiq reads it once, when imported: it must be in the environment it starts with.
    os.environ.setdefault("dramatiq_queue_prefetch", str(prefetch or threads))
    os.execv(sys.executable, argv)
