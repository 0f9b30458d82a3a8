"""``portalflow queues``: the ops page's queue table in the terminal."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from portalflow.workers import queue_stats

from .common import console, fail, print_json, settings

NAMESPACE_ENV = "PORTALFLOW_BROKER_NAMESPACE"


def queues(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="Dramatiq's Redis key namespace "
            f"(default: ${NAMESPACE_ENV}, else {queue_stats.DEFAULT_NAMESPACE!r})."
        ),
    ] = None,
) -> None:
    """Ready, delayed, in-progress and dead-lettered messages per queue, and live workers.

    Reads the Redis broker named by `PORTALFLOW_BROKER_URL`.
    Example: `PORTALFLOW_BROKER_URL=redis://127.0.0.1:6379/0 portalflow queues --json`
    """
    config = settings()
    url = config.broker_url
    if config.embedded_broker:
        fail(
            "PORTALFLOW_BROKER_URL is not set: the embedded broker lives inside one process "
            "and keeps no queues to inspect. Set PORTALFLOW_BROKER_URL=redis://HOST:6379/0."
        )
    if not url.startswith(("redis://", "rediss://", "unix://")):
        fail(
            f"`portalflow queues` reads Redis; the broker is {url.partition(':')[0]}:// "
            "(use its own management tools, e.g. the RabbitMQ management UI)"
        )
    namespace = namespace or config.broker_namespace
    client = queue_stats.client_from_url(url)
    try:
        snap = queue_stats.snapshot(client, namespace)
    except queue_stats.redis.RedisError as exc:
        fail(f"cannot read the Redis broker: {exc}")
    finally:
        client.close()
    if as_json:
        print_json(snap.as_dict())
        return
    table = Table(title=f"Queues (namespace {namespace})")
    table.add_column("queue")
    for name in ("ready", "delayed", "in progress", "dead"):
        table.add_column(name, justify="right")
    for q in snap.queues:
        dead = f"[bold red]{q.dead}[/]" if q.dead else "0"
        table.add_row(q.queue, str(q.ready), str(q.delayed), str(q.in_progress), dead)
    console.print(table)
    console.print(f"live workers: [bold]{len(snap.workers)}[/]")
    for c in snap.consumers:
        state = "live" if c.live else "[bold red]lost[/]"
        console.print(f"  {c.host} pid {c.pid}: {', '.join(c.queues)} x{c.threads} ({state})")
