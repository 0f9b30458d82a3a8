"""``portalflow scheduler``: fire the maintenance jobs on their cron schedule."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from portalflow.workers import scheduler as jobs

from .common import console, err_console, settings


def scheduler(
    once: Annotated[
        bool,
        typer.Option("--once", help="Fire the jobs whose last slot was missed, then exit."),
    ] = False,
) -> None:
    """Enqueue the maintenance actors on schedule (UTC): the invitation expiry sweep hourly,
    licence reconciliation daily at `PORTALFLOW_RECONCILE_HOUR_UTC` (02:00), recovery of
    stuck work every 5 minutes and deletion of handled webhook events older than
    `PORTALFLOW_RETENTION_DAYS` daily at 03:30.

    The scheduler only enqueues; `portalflow worker` does the work. Running two schedulers
    is safe: a Redis lock on `PORTALFLOW_BROKER_URL` lets one of them fire each slot. A slot
    missed while no scheduler ran is fired once on start. Stop it with Ctrl-C.

    Example: `PORTALFLOW_BROKER_URL=redis://127.0.0.1:6379/0 portalflow scheduler`
    """
    config = settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if config.embedded_broker:
        err_console.print(
            "[yellow]warning:[/] PORTALFLOW_BROKER_URL is not set: jobs go to an in-process "
            "broker that no worker reads, and the lock protects this process only."
        )
    running = jobs.from_settings(config)
    if once:
        fired = running.catch_up()
        console.print(f"fired {len(fired)} missed job(s): {', '.join(fired) or 'none'}")
        return
    jobs.run_forever(running)
