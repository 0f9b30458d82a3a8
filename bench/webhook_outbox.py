"""What the CRM webhook outbox adds to a bulk invite, per invitation (the bound: 10%).

The same servers and measurement as ``bench.dispatch_throughput``'s (c) ``bulk``: N records
of a fresh org invited through our actors (2 processes x 8 threads) to Postfix's
``smtp-sink``, timed until the run is completed. Measured twice per round, the order
alternating from round to round: ``without`` an endpoint (each batch of changes pays one
lookup of the org's endpoints) and ``with`` one endpoint wanting every event type (each
invitation also writes two outbox rows, ``invitation.queued`` and ``invitation.sent``, in
its own transactions, and each commit enqueues their ``deliver_webhook`` messages). The
workers consume only the ``invitations`` queue, so the deliveries (the POSTs, a cost of
their own, after the invite) wait in Redis: what is measured is what the outbox adds.

Prints per variant the medians over the rounds of wall and CPU milliseconds per invitation
(CPU over every program: workers, PostgreSQL's backends, Redis, the sink) and SQL
statements per invitation, the outbox rows written per invitation, then the with/without
ratios of CPU and wall per invitation (the issue's bound: at most 1.10): the median over the
rounds of each round's own ratio, and each round's CPU ratio; then one JSON line. On a
shared machine the wall figures move with the neighbours, the CPU figures less, and a
round's two back-to-back variants least.

    .venv/bin/python -m bench.webhook_outbox [--quick] [--invitations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable

from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import WebhookDelivery, make_engine, make_session_factory
from portalflow.pipelines.crm_webhooks import endpoints

from .dispatch_throughput import Seeded, Timing, measure_bulk, running_servers

FULL, QUICK = 5_000, 200
ROUNDS = 4
INVITATIONS_QUEUE = "invitations"
# Never called during the run (the webhooks queue is not consumed); it must only pass the
# URL policy, hence the allowed loopback network.
ENDPOINT_URL = "http://127.0.0.1:9/crm"
BOUND = 1.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} invitations, 1 round")
    parser.add_argument("--invitations", type=int, help=f"N (default {FULL:,})")
    parser.add_argument("--rounds", type=int, help=f"rounds of both variants (default {ROUNDS})")
    args = parser.parse_args()
    count = args.invitations or (QUICK if args.quick else FULL)
    rounds = args.rounds or (1 if args.quick else ROUNDS)
    if not 1 <= count <= 10_000:
        parser.error("N must be between 1 and 10,000 (the Client Portal's free licences)")

    results: dict[str, list[tuple[Timing, int]]] = {"without": [], "with": []}
    with running_servers(
        webhook_key=Fernet.generate_key().decode(),
        webhook_allowed_networks="127.0.0.0/8",
    ) as servers:
        settings = Settings.from_env(servers.env)
        for number in range(rounds):
            order = ("without", "with") if number % 2 == 0 else ("with", "without")
            for variant in order:
                before = _outbox_rows(settings)
                timing = measure_bulk(
                    servers,
                    settings,
                    count,
                    prepare=_subscriber(settings) if variant == "with" else None,
                    queues=(INVITATIONS_QUEUE,),
                )
                results[variant].append((timing, _outbox_rows(settings) - before))

    figures: dict[str, object] = {"invitations": count, "rounds": rounds}
    for variant, runs in results.items():
        figures |= {
            f"{variant}_wall_ms": _median(runs, lambda t: t.seconds / t.count * 1000),
            f"{variant}_cpu_ms": _median(runs, lambda t: t.cpu_ms()),
            f"{variant}_cpu_ms_postgres": _median(runs, lambda t: t.cpu_ms("postgres")),
            f"{variant}_cpu_ms_workers": _median(runs, lambda t: t.cpu_ms("workers")),
            f"{variant}_sql_per_invitation": _median(runs, lambda t: t.statements / t.count),
            f"{variant}_outbox_rows_per_invitation": round(
                statistics.median(rows / timing.count for timing, rows in runs), 2
            ),
            f"{variant}_sent": min(timing.count for timing, _ in runs),
        }
    figures["cpu_with_over_without"] = _paired_ratio(results, lambda t: t.cpu_ms())
    figures["wall_with_over_without"] = _paired_ratio(results, lambda t: t.seconds / t.count)
    figures["cpu_ratio_by_round"] = [
        round(with_[0].cpu_ms() / without[0].cpu_ms(), 3)
        for with_, without in zip(results["with"], results["without"], strict=True)
    ]
    for name, value in figures.items():
        print(f"{name:36} {value}")
    print(f"{'bound':36} cpu_with_over_without <= {BOUND}")
    print(json.dumps(figures))


def _subscriber(settings: Settings) -> Callable[[Session, Seeded], object]:
    def subscribe(session: Session, seeded: Seeded) -> object:
        return endpoints.create_endpoint(session, settings, seeded.org_id, ENDPOINT_URL)

    return subscribe


def _outbox_rows(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            return session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0
    finally:
        engine.dispose()


def _median(runs: list[tuple[Timing, int]], figure: Callable[[Timing], float]) -> float:
    return round(statistics.median(figure(timing) for timing, _ in runs), 3)


def _paired_ratio(
    results: dict[str, list[tuple[Timing, int]]], figure: Callable[[Timing], float]
) -> float:
    """The median over the rounds of each round's with/without ratio.

    The two variants of a round run back to back, so a round's ratio cancels the machine's
    slower drifts (neighbours, frequency) that a ratio of medians over rounds keeps.
    """
    pairs = zip(results["with"], results["without"], strict=True)
    return round(statistics.median(figure(w) / figure(wo) for (w, _), (wo, _) in pairs), 3)


if __name__ == "__main__":
    main()
