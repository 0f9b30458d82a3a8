"""Event latency: a CRM email change over HTTP until its confirmation email is accepted.

One run starts a private Redis (the broker), a fresh migrated database on the shared
PostgreSQL, the real web app (``portalflow serve``) and 2 Dramatiq worker processes
(``portalflow.workers``, 8 threads each), on an otherwise idle system. N confirmed portal
users are seeded; each event ``record.email_changed`` gives one of them a new address,
which suspends its login and mails a confirmation there (one queue hop: the event's actor
applies the change and sends; the crm-events queue is polled at least every
``PORTALFLOW_REALTIME_POLL_MS`` when idle). Events are sent one at a time, each after the
previous one's email arrived, and timed from the start of ``POST /events`` to the moment
the SMTP server accepts the message (end of DATA).

The SMTP server here is an aiosmtpd handler inside this process that notes each
recipient's arrival time: Postfix's ``smtp-sink`` cannot report arrivals, and at one
message at a time the Python server's ~1 ms per message is part of the measured path
but small against the target (this is a latency figure, not a throughput one).

Prints one line per figure (milliseconds), then a one-line JSON summary.

    .venv/bin/python -m bench.event_latency [--quick] [--events N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from dramatiq.worker import WORKER_TIMEOUT
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    CrmEvent,
    CrmRecord,
    EmailKind,
    Invitation,
    PortalUser,
    PortalUserStatus,
    make_engine,
    make_session_factory,
    utcnow,
)
from portalflow.pipelines.tenancy import api_keys, orgs

from .harness import (
    free_port,
    private_redis,
    smtp_settings,
    temporary_database,
    wait_for_port,
    worker_env,
    worker_processes,
)

FULL, QUICK = 1_000, 20
WARM_UP = 10
PROCESSES, THREADS = 2, 8
TARGET_P95_MS, TARGET_P99_MS = 100, 200
MAIL_TIMEOUT_SECONDS = 60.0


class ArrivalHandler:
    """An SMTP handler that accepts everything and notes when each recipient's mail came."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        at = time.perf_counter()
        with self.changed:
            for recipient in envelope.rcpt_tos:
                self.arrived[recipient.lower()] = at
            self.changed.notify_all()
        return "250 2.0.0 accepted"

    def wait_for(self, recipient: str, timeout: float) -> float:
        """When the mail to ``recipient`` arrived; TimeoutError if it did not in time."""
        with self.changed:
            if not self.changed.wait_for(lambda: recipient in self.arrived, timeout):
                raise TimeoutError(f"no mail to {recipient} within {timeout:.0f} s")
            return self.arrived[recipient]


@contextmanager
def arrival_server() -> Iterator[tuple[ArrivalHandler, int]]:
    """The recording SMTP server on a free port: (handler, port)."""
    handler = ArrivalHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@contextmanager
def web_app(env: dict[str, str], log: Path) -> Iterator[str]:
    """``portalflow serve`` on a free port with ``env``; yields its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "portalflow.cli", "serve", "--port", str(port)]
    with open(log, "ab") as output:
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, what="portalflow serve")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} events, for CI")
    parser.add_argument("--events", type=int, help=f"N (default {FULL:,})")
    args = parser.parse_args()
    count = args.events or (QUICK if args.quick else FULL)
    if count < 1:
        parser.error("N must be at least 1")

    with (
        tempfile.TemporaryDirectory(prefix="portalflow-bench-") as scratch,
        private_redis() as broker,
        arrival_server() as (mail, smtp_port),
        temporary_database() as database_url,
    ):
        env = worker_env(database_url, broker.url, scratch, **smtp_settings(smtp_port))
        key, crm_ids = seed(database_url, WARM_UP + count)
        log = Path(scratch) / "servers.log"
        options: dict[str, Any] = {"processes": PROCESSES, "threads": THREADS, "log_path": log}
        with (
            worker_processes(env, **options),
            web_app(env, log) as base_url,
            httpx.Client(base_url=base_url, timeout=30) as client,
        ):
            client.headers["Authorization"] = f"Bearer {key}"
            timed = [post_and_wait(client, mail, crm_id, n) for n, crm_id in enumerate(crm_ids)]
        timed = timed[WARM_UP:]
        stages = stage_times(database_url, timed)
    latencies = [event.total_ms for event in timed]

    figures: dict[str, object] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "events": count,
        "processes": PROCESSES,
        "threads": THREADS,
        # Dramatiq's idle poll backs off up to this on other queues; crm-events to the next.
        "dramatiq_worker_timeout_ms": WORKER_TIMEOUT,
        "realtime_poll_ms": Settings.from_env().realtime_poll_ms,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(max(latencies), 1),
        **{f"{stage}_p50_ms": percentile(values, 50) for stage, values in stages.items()},
        "target_p95_ms": TARGET_P95_MS,
        "target_p99_ms": TARGET_P99_MS,
    }
    for name, value in figures.items():
        print(f"{name:28} {value}")
    print(json.dumps(figures))


def seed(database_url: str, count: int) -> tuple[str, list[str]]:
    """An org with an API key and ``count`` confirmed portal users; (key, their CRM ids)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            key, crm_ids = _seed(session, count)
            session.commit()
    finally:
        engine.dispose()
    return key, crm_ids


def _seed(session: Session, count: int) -> tuple[str, list[str]]:
    org = orgs.create_org(
        session,
        name="Zylker Retail",
        company_domain="zylker.com",
        country="US",
        edition="enterprise",
        from_email="portal@zylker-support.com",
        from_name="Zylker Customer Portal",
    )
    user_type = next(t for t in org.user_types if t.is_client_portal)
    _, key = api_keys.create_key(session, org.id, "bench")
    records = [
        {
            "org_id": org.id,
            "crm_id": f"C-{n:06d}",
            "module": "Contacts",
            "first_name": "Sage",
            "last_name": f"Weiser {n}",
            "email": f"user.{n}@customer.example.org",
            "fields": {},
        }
        for n in range(count)
    ]
    table = CrmRecord.__table__
    ids = session.execute(insert(table).returning(table.c.id, table.c.email), records).all()
    now = utcnow()
    users = [
        {
            "org_id": org.id,
            "record_id": record_id,
            "user_type_id": user_type.id,
            "status": PortalUserStatus.CONFIRMED,
            "email": email,
            "confirmed_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for record_id, email in ids
    ]
    session.execute(insert(PortalUser.__table__), users)
    return key, [record["crm_id"] for record in records]


@dataclass(frozen=True)
class Timed:
    """One event: its id and address, and when it was posted, answered and its mail came."""

    event_id: str
    address: str
    started: float  # perf_counter seconds
    answered: float
    arrived: float

    @property
    def total_ms(self) -> float:
        return (self.arrived - self.started) * 1000


def post_and_wait(client: httpx.Client, mail: ArrivalHandler, crm_id: str, n: int) -> Timed:
    """Change one record's email over HTTP and wait until its confirmation mail arrives."""
    event_id, address = f"evt-{n}", f"moved.{n}@new.example.org"
    body = {"id": event_id, "type": "record.email_changed", "data": {}}
    body["data"] = {"record_id": crm_id, "email": address}
    started = time.perf_counter()
    answer = client.post("/events", json=body)
    answered = time.perf_counter()
    answer.raise_for_status()
    arrived = mail.wait_for(address, MAIL_TIMEOUT_SECONDS)
    return Timed(event_id, address, started, answered, arrived)


def stage_times(database_url: str, timed: list[Timed]) -> dict[str, list[float]]:
    """Where each event's time went (ms), from the rows' timestamps.

    ``http``: the POST until its answer; ``event``: then until the event was applied
    (queue hop and handler); ``claim``: then until the email's row was claimed (commit, in
    the same actor); ``send``: then until the mail was accepted (render, build, SMTP).
    """
    # The rows carry wall-clock times, the figures perf_counter ones: one offset maps them.
    offset = time.time() - time.perf_counter()
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            events = select(CrmEvent.idempotency_key, CrmEvent.processed_at)
            processed = {key: at for key, at in session.execute(events)}
            emails = select(Invitation.address, Invitation.claimed_at).where(
                Invitation.kind == EmailKind.CONFIRM_EMAIL
            )
            claimed = {address: at for address, at in session.execute(emails)}
    finally:
        engine.dispose()
    stages: dict[str, list[float]] = {"http": [], "event": [], "claim": [], "send": []}
    for event in timed:
        applied = processed[event.event_id].timestamp() - offset
        sending = claimed[event.address].timestamp() - offset
        marks = (event.started, event.answered, applied, sending, event.arrived)
        for stage, start, end in zip(stages, marks, marks[1:], strict=False):
            stages[stage].append((end - start) * 1000)
    return stages


def percentile(values: list[float], p: int) -> float:
    """The p-th percentile (inclusive method: within the measured range)."""
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 1)


if __name__ == "__main__":
    main()
