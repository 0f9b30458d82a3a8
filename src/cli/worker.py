"""``portalflow worker``: Dramatiq worker processes for every portalflow actor."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from portalflow.workers import broker

from .common import fail, settings


def known_queues() -> set[str]:
    """The queues portalflow's actors are declared on."""
    return broker.queue_names()


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
    queues: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-Q",
            help="Consume only this queue (repeat for more; default: every queue). Queues: "
            "crm-events (CRM events, address-change emails), invitations (bulk runs, sends), "
            "provider-events, maintenance, webhooks (CRM webhook POSTs), and the user and"
            " licence queues.",
        ),
    ] = None,
) -> None:
    """Run Dramatiq workers on the Redis broker named by `PORTALFLOW_BROKER_URL`.

    Same as `dramatiq_queue_prefetch=THREADS dramatiq portalflow.workers --processes N --threads
    THREADS [--queues Q ...]`.
    Example: `PORTALFLOW_BROKER_URL=redis://127.0.0.1:6379/0 portalflow worker --processes 4`;
    a group for CRM events only: `portalflow worker --processes 1 --threads 4 -Q crm-events`.
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
    if queues:
        unknown = sorted(set(queues) - known_queues())
        if unknown:
            fail(
                f"unknown queue {', '.join(unknown)}; the queues are "
                f"{', '.join(sorted(known_queues()))}"
            )
        argv += ["--queues", *queues]
    # Dramatiq reads it once, when imported: it must be in the environment it starts with.
    os.environ.setdefault("dramatiq_queue_prefetch", str(prefetch or threads))
    os.execv(sys.executable, argv)
