"""Quota adherence: two worker processes against a provider that allows R requests per second.

A local SES v2 ``SendEmail`` endpoint answers every request after 50 ms and refuses with
429 ``TooManyRequestsException`` any request that would make more than R = 100 accepted
requests in the sliding 1 s before it (refused requests use no quota). Two ``dramatiq
portalflow.workers`` processes (8 threads each; Redis broker, PostgreSQL) send one bulk
invite of N invitations through the SES channel, paced by ``PORTALFLOW_EMAIL_MAX_SEND_RATE``
(the limiter shared in Redis). We print the achieved rate (accepted requests per second
between the first and the last) over R, the busiest 1 s window, and the 429s; and, to
read the rest, the workers' CPU time per invitation and the machine's load average.

The limiter is set 3% under the quota (97/s): it spaces the requests as they leave, and
thread scheduling and the network bunch them by a few milliseconds on arrival.

Chunk size: one worker thread sends a chunk's invitations one after another, so a thread
makes at most 1 / 50 ms = 20 requests/s and R needs at least 5 chunks sending at every
moment. N / 16 per chunk gives one chunk to each of the 2 x 8 threads: they all start
within about a second (expanding a chunk holds its user type's licence lock, so chunks
start one after another), then the shared schedule gives each about R / 16 per second,
well under what one thread can do, so they all finish together and the tail is short.
Smaller chunks finish in waves, and each new wave's one-by-one start shows as a dip.
``dramatiq_queue_prefetch=8`` stops the first process up from taking every chunk.

Before the measured run, a warm-up run of one invitation per thread (not counted) loads
what long-running workers keep loaded: the SES client's service model, the compiled
templates, the database connections.

    .venv/bin/python -m bench.quota [--quick] [--invitations N] [--send-rate R] [--chunk-size C]

Run from the repository root; prints one line per figure, then a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bench import harness
from bench.harness import private_redis, temporary_database, worker_processes
from portalflow.config import Settings
from portalflow.models import BulkRun, BulkRunStatus, CrmRecord, make_engine, make_session_factory
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.tenancy import orgs
from tests.local_http import LocalServer, serving

QUOTA = 100  # R: requests per second the provider accepts
LATENCY = 0.050  # seconds before the provider answers
SEND_RATE = 97.0  # PORTALFLOW_EMAIL_MAX_SEND_RATE: 3% headroom under the quota
PROCESSES, THREADS = 2, 8
FULL, QUICK = 2_000, 150  # invitations: about 20 s and 1.5 s at R


class QuotaProvider(LocalServer):
    """An SES v2 endpoint with a sliding-window quota and a fixed answer time."""

    def __init__(self, quota: int, latency: float) -> None:
        super().__init__(_Handler)
        self.quota = quota
        self.latency = latency
        self.lock = threading.Lock()
        self.window: deque[float] = deque()  # accepted arrivals in the last second
        self.accepted: list[float] = []
        self.refused = 0

    def reset(self) -> None:
        """Forget the requests counted so far."""
        with self.lock:
            self.window.clear()
            self.accepted.clear()
            self.refused = 0

    def admit(self) -> bool:
        """Count one arrival; False when it would exceed the quota in the last second."""
        now = time.monotonic()
        with self.lock:
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) >= self.quota:
                self.refused += 1
                return False
            self.window.append(now)
            self.accepted.append(now)
            return True


class _Handler(BaseHTTPRequestHandler):
    server: QuotaProvider
    protocol_version = "HTTP/1.1"  # keep-alive, as SES does: no connection per request
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait
    # for the client's delayed ACK (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        admitted = self.server.admit()
        time.sleep(self.server.latency)
        if admitted:
            status, body = 200, {"MessageId": f"0100-{uuid.uuid4().hex}"}
        else:
            status, body = 429, {"message": "Maximum sending rate exceeded."}
        data = json.dumps(body).encode()
        self.send_response(status)
        if not admitted:
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} invitations")
    parser.add_argument("--invitations", type=int, help=f"default {FULL:,}")
    parser.add_argument("--send-rate", type=float, default=SEND_RATE, help="the limiter's rate")
    parser.add_argument("--chunk-size", type=int, help="default: invitations / 16")
    args = parser.parse_args()
    invitations = args.invitations or (QUICK if args.quick else FULL)
    chunk_size = args.chunk_size or math.ceil(invitations / (PROCESSES * THREADS))

    with (
        tempfile.TemporaryDirectory(prefix="portalflow-quota-") as scratch,
        private_redis() as redis_server,
        temporary_database() as database_url,
        serving(QuotaProvider(QUOTA, LATENCY)) as provider,
    ):
        world = seed(database_url, invitations)
        warm_up = start_run(database_url, world, [f"W{n}" for n in range(PROCESSES * THREADS)], 1)
        run_id, chunk_ids = start_run(
            database_url, world, [f"C{n}" for n in range(invitations)], chunk_size
        )
        env = worker_env(database_url, redis_server.url, provider.url, args.send_rate, scratch)
        log = Path(scratch) / "workers.log"
        with worker_processes(env, processes=PROCESSES, threads=THREADS, log_path=log) as workers:
            wait_until_ready(log, PROCESSES)
            enqueue(redis_server.url, warm_up[1])
            wait_for_run(database_url, warm_up[0], timeout=60)
            time.sleep(1.0)  # the warm-up's requests leave the provider's window
            provider.reset()
            assert workers.process is not None
            cpu_before = group_cpu_seconds(workers.process.pid)
            load_average = os.getloadavg()[0]
            started = time.monotonic()
            enqueue(redis_server.url, chunk_ids)
            run = wait_for_run(database_url, run_id, timeout=60 + 3 * invitations / QUOTA)
            wall = time.monotonic() - started
            worker_cpu = group_cpu_seconds(workers.process.pid) - cpu_before
        accepted, refused = sorted(provider.accepted), provider.refused

    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    achieved = (len(accepted) - 1) / span if span else 0.0
    figures: dict[str, object] = {
        "python": platform.python_version(),
        "invitations": invitations,
        "processes": PROCESSES,
        "threads": THREADS,
        "chunk_size": chunk_size,
        "quota_per_s": QUOTA,
        "limiter_per_s": args.send_rate,
        "provider_latency_ms": round(LATENCY * 1000),
        "sent": run.sent,
        "failed": run.failed,
        "accepted_requests": len(accepted),
        "refused_429": refused,
        "achieved_per_s": round(achieved, 2),
        "achieved_over_quota": round(achieved / QUOTA, 3),
        "busiest_second": busiest_second(accepted),
        "first_request_s": round(accepted[0] - started, 2) if accepted else None,
        "wall_s": round(wall, 2),
        "worker_cpu_ms_per_invitation": round(1000 * worker_cpu / invitations, 2),
        "load_average_at_start": round(load_average, 2),
    }
    for name, value in figures.items():
        print(f"{name:24} {value}")
    print(json.dumps(figures))


def seed(database_url: str, invitations: int) -> tuple[int, int, int]:
    """One org, one inviter, ``invitations`` contacts C0.. and a warm-up W0..; their ids."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            org = orgs.create_org(
                session,
                name="Zylker",
                company_domain="zylker.com",
                country="US",
                edition="enterprise",
                from_email="portal@zylker-support.com",
            )
            portal = next(t for t in org.user_types if t.is_client_portal)
            inviter = orgs.add_crm_user(
                session,
                org.id,
                name="Russell Brown",
                email="russell@zylker.com",
                modules=["Contacts"],
            )
            crm_ids = [f"C{n}" for n in range(invitations)]
            crm_ids += [f"W{n}" for n in range(PROCESSES * THREADS)]
            rows = [
                {
                    "org_id": org.id,
                    "crm_id": crm_id,
                    "module": "Contacts",
                    "first_name": "Sage",
                    "last_name": f"Weiser {crm_id}",
                    "email": f"{crm_id.lower()}@customer.example.org",
                    "approval_locked": False,
                    "review_locked": False,
                    "consent_given": False,
                    "in_recycle_bin": False,
                    "deleted": False,
                }
                for crm_id in crm_ids
            ]
            session.execute(insert(CrmRecord), rows)
            session.commit()
            return org.id, portal.id, inviter.id
    finally:
        engine.dispose()


def start_run(
    database_url: str, world: tuple[int, int, int], crm_ids: list[str], chunk_size: int
) -> tuple[int, list[int]]:
    """A bulk run over ``crm_ids``, committed; its id and its chunks' ids."""
    org_id, type_id, inviter_id = world
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            started = bulk.start_bulk_run(
                session,
                org_id=org_id,
                user_type_id=type_id,
                inviter_id=inviter_id,
                crm_ids=crm_ids,
                chunk_size=chunk_size,
            )
            session.commit()
            return started.run_id, started.chunk_ids
    finally:
        engine.dispose()


def worker_env(
    database_url: str, redis_url: str, provider_url: str, send_rate: float, scratch: str
) -> dict[str, str]:
    """The workers' environment: our database, broker and provider; dummy AWS credentials."""
    return {
        **harness.worker_env(
            database_url,
            redis_url,
            scratch,
            email_channel="ses",
            ses_endpoint_url=provider_url,
            email_max_send_rate=send_rate,
        ),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_CONFIG_FILE": str(Path(scratch) / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(Path(scratch) / "no-aws-credentials"),
        "dramatiq_queue_prefetch": str(THREADS),
    }


def wait_until_ready(log: Path, processes: int, timeout: float = 60.0) -> None:
    """Block until every worker process has logged that it is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count("Worker process is ready for action.") >= processes:
            return
        time.sleep(0.1)
    raise SystemExit(f"the workers did not start within {timeout:.0f} s; see {log}")


def enqueue(redis_url: str, chunk_ids: list[int]) -> None:
    """One bulk_invite message per chunk, on the workers' Redis broker."""
    from portalflow.workers.broker import install, make_broker
    from portalflow.workers.enqueue import enqueue_chunks

    broker = install(make_broker(Settings(broker_url=redis_url)))
    enqueue_chunks(chunk_ids)
    broker.close()


def wait_for_run(database_url: str, run_id: int, timeout: float) -> BulkRun:
    """Poll the run until every invitation is sent or failed; the run's final row."""
    engine = make_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        with make_session_factory(engine)() as session:
            while True:
                run = session.scalars(
                    select(BulkRun)
                    .where(BulkRun.id == run_id)
                    .execution_options(populate_existing=True)
                ).one()
                session.commit()
                if run.status != BulkRunStatus.RUNNING:
                    return run
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"the run did not finish within {timeout:.0f} s: {run.sent} sent, "
                        f"{run.failed} failed, {run.queued} queued"
                    )
                time.sleep(0.1)
    finally:
        engine.dispose()


def group_cpu_seconds(group: int) -> float:
    """CPU time (user + system) of the live processes of a process group, from /proc."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == group:  # fields 5, 14 and 15 of proc(5): pgrp, utime, stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def busiest_second(times: list[float]) -> int:
    """The most accepted requests inside any window [t, t + 1 s)."""
    most = start = 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


if __name__ == "__main__":
    main()
