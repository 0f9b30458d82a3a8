"""Dispatch throughput against Dramatiq's own limit and against the bare work.

One run starts a private Redis (the broker), Postfix's ``smtp-sink`` (a C SMTP server that
accepts and discards, so the sink is never the bottleneck) and a fresh migrated database
on the shared PostgreSQL, then measures three ways of getting N messages through two
processes:

(a) ``noop``: Dramatiq moving N no-op messages (each one Redis INCR, see
    ``bench/noop_actors.py``) through 2 worker processes x 8 threads, timed from the first
    enqueue to the last message counted;
(b) ``bare``: 2 plain processes doing only the essential work of N invitations: render
    the default template, build the MIME message with our modules, send it over one
    persistent SMTP connection per process; no queue, no database. Then the same work
    again in 2 processes x 8 threads, one SMTP connection per thread (``bare_threaded``):
    the workers' concurrency without our path, so the GIL's share of the gap shows;
(c) ``bulk``: a bulk invite of N records through our actors (``portalflow.workers``, 2
    processes x 8 threads): the run and its chunks are written and enqueued as the CLI
    does, and the time runs until the run is completed in the database with every
    invitation sent. The workers are warmed up first with a small run in another org.

Prints one line per figure: items/s for each, the ratios bulk/noop (target >= 1.0),
bulk/bare (target >= 0.7) and bulk/bare_threaded, the chunk size
(``PORTALFLOW_BULK_CHUNK_SIZE``, or ``--chunk-size``), then what each item cost in CPU
milliseconds, over every program involved (read from ``/proc``: workers, PostgreSQL's
backends for the bench database, Redis, the sink) and per program for the bulk run, how busy
each worker process was (CPU seconds / wall seconds), how many PostgreSQL connections served
the bulk run and ``bulk_sql_per_invitation``: the SQL statements the worker processes sent
to the database in the bulk run's timed window, per invitation (the workers run
``bench.counted_workers``, our actors with ``bench.sqlcount`` counting; an executemany
counts once per parameter set, a multi-row INSERT or UPDATE once). On a shared machine the
wall figures move with the neighbours, the CPU and SQL figures less. Then a one-line JSON
summary.

Dramatiq reads its own tuning from the environment, and the workers inherit it, e.g.
``dramatiq_queue_prefetch=8`` (messages a worker process holds; default 2 per thread).

    .venv/bin/python -m bench.dispatch_throughput [--quick] [--invitations N] [--chunk-size K]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import smtplib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import redis
from dramatiq import Broker
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import (
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationStatus,
    make_engine,
    make_session_factory,
)
from portalflow.pipelines.content.message import build_message
from portalflow.pipelines.content.rendering import (
    CompiledEmailTemplate,
    build_context,
    default_template,
)
from portalflow.pipelines.delivery.outgoing_email import invitation_link
from portalflow.pipelines.invitations import bulk, tokens
from portalflow.pipelines.ops import reports
from portalflow.pipelines.tenancy import orgs

from . import noop_actors, sqlcount
from .cputime import CpuMeter, database_backends, process_group
from .harness import (
    Workers,
    private_redis,
    smtp_settings,
    smtp_sink,
    temporary_database,
    worker_env,
    worker_processes,
)

FULL, QUICK = 10_000, 300
PROCESSES, THREADS = 2, 8
COUNTED_WORKERS = "bench.counted_workers"  # our actors, counting their SQL statements
WARM_UP_RECORDS, WARM_UP_CHUNK = 64, 4
PORTAL_BASE_URL = "http://localhost:8000/portal"
FIRST_NAMES = ("Aarav", "Aiko", "Amara", "Ana", "Ben", "Chloe", "Diego", "Elif", "Emma")
LAST_NAMES = ("Brown", "Dubois", "Garcia", "Ito", "Kapoor", "Muller", "Okafor", "Silva")
# How often the bench looks for the end of a run (and samples the CPU meter). Each look is
# a query and a /proc scan: at 10 ms the bench itself took 15-18% of a core during the bulk
# run, from the same 2 cores. 50 ms bounds the end-time error to 0.5% of a 10 s run.
POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class Timing:
    count: int
    seconds: float
    cpu: dict[str, float]  # program -> CPU seconds it spent in the timed window
    # Per worker process: CPU seconds / wall seconds (1.0 is one core busy all along).
    busy: tuple[float, ...] = ()
    # PostgreSQL backends that served the run: more than the workers' threads means churn.
    connections: int = 0
    # SQL statements the worker processes sent in the timed window (see bench.sqlcount).
    statements: int = 0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def cpu_ms(self, *programs: str) -> float:
        """CPU milliseconds per item, over ``programs`` (all of them when none is named)."""
        seconds = sum(v for k, v in self.cpu.items() if not programs or k in programs)
        return seconds / self.count * 1000


@dataclass(frozen=True)
class Servers:
    """What the three measurements share: the workers' settings and the servers' processes."""

    env: dict[str, str]
    broker_url: str
    redis_pid: int
    smtp_port: int
    sink_pid: int
    log: Path


@contextmanager
def running_servers(**settings: object) -> Iterator[Servers]:
    """A private Redis, an SMTP sink and a fresh database, with the workers' environment.

    ``settings`` are more ``PORTALFLOW_*`` settings for the workers (``worker_env``'s names).
    """
    with (
        tempfile.TemporaryDirectory(prefix="portalflow-bench-") as scratch,
        private_redis() as broker,
        smtp_sink() as sink,
        temporary_database() as database_url,
    ):
        env = worker_env(
            database_url,
            broker.url,
            scratch,
            **smtp_settings(sink.port),
            portal_base_url=PORTAL_BASE_URL,
            **settings,
        )
        yield Servers(
            env=env,
            broker_url=broker.url,
            redis_pid=broker.process.pid,
            smtp_port=sink.port,
            sink_pid=sink.process.pid,
            log=Path(scratch) / "workers.log",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} invitations, for CI")
    parser.add_argument("--invitations", type=int, help=f"N (default {FULL:,})")
    parser.add_argument(
        "--chunk-size", type=int, help="records per bulk_invite message (default: the setting)"
    )
    args = parser.parse_args()
    count = args.invitations or (QUICK if args.quick else FULL)
    if not 1 <= count <= 10_000:
        parser.error("N must be between 1 and 10,000 (the Client Portal's free licences)")

    extra = {"bulk_chunk_size": args.chunk_size} if args.chunk_size else {}
    with running_servers(**extra) as servers:
        settings = Settings.from_env(servers.env)
        noop = measure_noop(servers, count)
        bare = measure_bare(servers, count)
        bare_threaded = measure_bare(servers, count, threads=THREADS)
        invite = measure_bulk(servers, settings, count)

    figures: dict[str, object] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "invitations": count,
        "processes": PROCESSES,
        "threads": THREADS,
        "bulk_chunk_size": settings.bulk_chunk_size,
        "noop_s": round(noop.seconds, 3),
        "bare_s": round(bare.seconds, 3),
        "bulk_s": round(invite.seconds, 3),
        "noop_per_s": round(noop.rate, 1),
        "bare_per_s": round(bare.rate, 1),
        "bare_threaded_per_s": round(bare_threaded.rate, 1),
        "bulk_per_s": round(invite.rate, 1),
        "bulk_over_noop": round(invite.rate / noop.rate, 3),
        "bulk_over_bare": round(invite.rate / bare.rate, 3),
        "bulk_over_bare_threaded": round(invite.rate / bare_threaded.rate, 3),
        # CPU per message / invitation, all programs; then the bulk run's by program.
        "noop_cpu_ms": round(noop.cpu_ms(), 3),
        "bare_cpu_ms": round(bare.cpu_ms(), 3),
        "bare_threaded_cpu_ms": round(bare_threaded.cpu_ms(), 3),
        "bulk_cpu_ms": round(invite.cpu_ms(), 3),
        **{f"bulk_cpu_ms_{name}": round(invite.cpu_ms(name), 3) for name in invite.cpu},
        "noop_worker_busy": noop.busy,
        "bulk_worker_busy": invite.busy,
        "bulk_db_connections": invite.connections,
        "bulk_sql_per_invitation": round(invite.statements / invite.count, 2),
        "noop_done": noop.count,
        "bare_sent": bare.count,
        "bare_threaded_sent": bare_threaded.count,
        "bulk_sent": invite.count,
    }
    for name, value in figures.items():
        print(f"{name:24} {value}")
    print(f"{'targets':24} bulk_over_noop >= 1.0, bulk_over_bare >= 0.7")
    print(json.dumps(figures))


# --- (a) Dramatiq moving no-op messages ------------------------------------------------------


def measure_noop(servers: Servers, count: int) -> Timing:
    """Enqueue ``count`` no-op messages to running workers; time until all are counted."""
    actor = noop_actors.declare(_broker(Settings.from_env(servers.env)))
    counter = redis.Redis.from_url(servers.broker_url)
    workers = Workers(
        servers.env,
        module="bench.noop_actors:broker",
        processes=PROCESSES,
        threads=THREADS,
        log_path=servers.log,
    )
    workers.start()
    assert workers.process is not None
    group = workers.process.pid
    meter = CpuMeter(workers=lambda: process_group(group), redis=lambda: [servers.redis_pid])
    try:
        warm_up = PROCESSES * THREADS * 4
        for _ in range(warm_up):
            actor.send()
        _wait(lambda: _count(counter) >= warm_up, "the no-op warm-up", servers.log)
        counter.delete(noop_actors.COUNTER)
        meter.start()
        started = time.perf_counter()
        for _ in range(count):
            actor.send()
        _wait(lambda: _count(counter) >= count, "the no-op messages", servers.log)
        seconds = time.perf_counter() - started
        cpu = meter.stop()
    finally:
        workers.stop()
    return Timing(_count(counter), seconds, cpu, _busy(meter, group, seconds))


def _broker(settings: Settings) -> Broker:
    from portalflow.workers.broker import make_broker

    return make_broker(settings)


def _busy(meter: CpuMeter, parent: int, seconds: float) -> tuple[float, ...]:
    """How busy each worker process was (the Dramatiq parent only watches them)."""
    spent = meter.by_process["workers"]
    return tuple(round(spent[pid] / seconds, 2) for pid in sorted(spent) if pid != parent)


def _count(counter: redis.Redis) -> int:
    return int(counter.get(noop_actors.COUNTER) or 0)


# --- (b) the bare work in plain processes ----------------------------------------------------


def measure_bare(servers: Servers, count: int, threads: int = 1) -> Timing:
    """Render, build and send ``count`` invitations from 2 processes; no queue, no database.

    With ``threads`` > 1 each process splits its share over that many threads, each with
    its own SMTP connection: the same work at the workers' concurrency, so what the GIL's
    hand-offs cost shows apart from what our path adds.
    """
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PROCESSES + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=_bare_process, args=(servers.smtp_port, n, share, threads, ready, results)
        )
        for n, share in enumerate(_shares(count, PROCESSES))
    ]
    for process in processes:
        process.start()
    meter = CpuMeter(smtp_sink=lambda: [servers.sink_pid])
    meter.start()
    ready.wait(timeout=60)
    outcomes = [results.get(timeout=TIMEOUT_SECONDS) for _ in processes]
    cpu = {"processes": sum(cpu for _, _, cpu in outcomes), **meter.stop()}
    for process in processes:
        process.join()
    sent = sum(sent for sent, _, _ in outcomes)
    return Timing(sent, max(seconds for _, seconds, _ in outcomes), cpu)


def _shares(count: int, parts: int) -> list[int]:
    return [count // parts + (1 if n < count % parts else 0) for n in range(parts)]


def _bare_process(
    smtp_port: int,
    worker: int,
    share: int,
    threads: int,
    ready: Barrier,
    results: Queue[tuple[int, float, float]],
) -> None:
    """One bare process: its share of the invitations, over one SMTP connection per thread."""
    template = default_template(EmailKind.ACCEPT_INVITATION, "en")
    connections = [smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) for _ in range(threads)]
    for connection in connections:
        connection.ehlo()
    parts = _shares(share, threads)
    starts = itertools.accumulate(parts, initial=worker * 1_000_000)  # one more than parts
    loops = [
        threading.Thread(target=_bare_loop, args=(template, connection, first, part))
        for connection, first, part in zip(connections, starts, parts, strict=False)
    ]
    ready.wait(timeout=60)
    started, cpu_started = time.perf_counter(), time.process_time()
    if threads == 1:  # in this thread, as the bare loop always ran
        loops[0].run()
    else:
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    for connection in connections:
        connection.quit()
    results.put((share, seconds, cpu))


def _bare_loop(
    template: CompiledEmailTemplate, connection: smtplib.SMTP, first: int, count: int
) -> None:
    """Render, build and send invitations ``first`` .. ``first + count - 1``."""
    for n in range(first, first + count):
        record = _record_values(n)
        token, _digest = tokens.new_token()
        link = invitation_link(PORTAL_BASE_URL, "zylker-retail", EmailKind.ACCEPT_INVITATION, token)
        rendered = template.render(
            build_context(
                record=record,
                org_name="Zylker Retail",
                portal_name="Zylker Retail",
                portal_url=f"{PORTAL_BASE_URL}/zylker-retail",
                user_type_name="Client Portal",
                inviter_name="Russell Brown",
                link=link,
                kind=EmailKind.ACCEPT_INVITATION,
                expires_at=None,
            )
        )
        built = build_message(
            rendered=rendered,
            from_address="portal@zylker-support.com",
            from_name="Zylker Customer Portal",
            reply_to="help@zylker-support.com",
            recipient=record["email"],
            recipient_name=f"{record['first_name']} {record['last_name']}",
            headers={"X-Portalflow-Invitation": str(n)},
        )
        connection.sendmail(built.envelope_from, [built.recipient], built.raw)


def _record_values(n: int) -> dict[str, str]:
    first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[n % len(LAST_NAMES)]
    return {
        "crm_id": f"B-{n:07d}",
        "module": "Contacts",
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.{n}@customer.example.org".lower(),
    }


# --- (c) a bulk invite through our actors ----------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    org_id: int
    user_type_id: int
    inviter_id: int
    crm_ids: list[str]


def measure_bulk(
    servers: Servers,
    settings: Settings,
    count: int,
    *,
    prepare: Callable[[Session, Seeded], object] | None = None,
    queues: tuple[str, ...] = (),
) -> Timing:
    """Invite ``count`` records through the workers; time until the run is completed.

    The workers count their SQL statements (``bench.counted_workers``): the counter is
    zeroed once the warm-up's statements are all in and read once every worker process
    has flushed after the timed window. ``prepare`` sees the invited org before the run
    (``bench.webhook_outbox`` subscribes an endpoint there); ``queues`` limits what the
    workers consume (default: every queue).
    """
    from portalflow.workers import enqueue
    from portalflow.workers.broker import install

    install(_broker(settings))  # our actors, on the private Redis
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    counter = redis.Redis.from_url(servers.broker_url)
    log = servers.log
    try:
        with factory() as session:
            warm = seed(session, "Warm Up", "warmup.example.com", WARM_UP_RECORDS)
            invited = seed(session, "Zylker Retail", "zylker.com", count)
            if prepare is not None:
                prepare(session, invited)
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        options = {
            "module": COUNTED_WORKERS,
            "processes": PROCESSES,
            "threads": THREADS,
            "queues": queues,
            "log_path": log,
        }
        with worker_processes(servers.env, **options) as workers:
            assert workers.process is not None
            group = workers.process.pid
            meter = CpuMeter(
                workers=lambda: process_group(group),
                postgres=lambda: database_backends(engine),
                redis=lambda: [servers.redis_pid],
                smtp_sink=lambda: [servers.sink_pid],
            )
            run_id = start(factory, warm, WARM_UP_CHUNK, enqueue.enqueue_chunks)
            _wait(lambda: _finished(factory, run_id), "the warm-up run", log)
            _settle_statements(counter, log)
            sqlcount.reset(counter)
            meter.start()
            started = time.perf_counter()
            run_id = start(factory, invited, settings.bulk_chunk_size, enqueue.enqueue_chunks)
            _wait(lambda: _finished(factory, run_id), "the bulk run", log, meter.sample)
            seconds, ended = time.perf_counter() - started, time.time()
            cpu = meter.stop()
            statements = _statements_flushed(counter, ended, log)
            busy = _busy(meter, group, seconds)
            connections = len(meter.by_process["postgres"])
        with factory() as session:
            sent = session.scalar(
                select(func.count()).where(
                    Invitation.bulk_run_id == run_id, Invitation.status == InvitationStatus.SENT
                )
            )
    finally:
        engine.dispose()
    return Timing(sent or 0, seconds, cpu, busy, connections, statements)


def _statements_flushed(counter: redis.Redis, since: float, log: Path) -> int:
    """The workers' statement count once each worker process has flushed after ``since``.

    Every statement sent before ``since`` is in it, plus what came in the one flush
    period (``sqlcount.FLUSH_SECONDS``) after.
    """
    _wait(
        lambda: sqlcount.flushed_since(counter, since, PROCESSES),
        "the workers' SQL statement counts",
        log,
    )
    return sqlcount.read(counter)


def _settle_statements(counter: redis.Redis, log: Path, rounds: int = 25) -> None:
    """Wait until the workers send no more statements (the warm-up's are all counted).

    Done when the count stays put over a flush of every worker process, so none of the
    warm-up's statements can still be on its way to the counter when it is zeroed; gives
    up after ``rounds`` flush periods (workers that never fall quiet).
    """
    previous = _statements_flushed(counter, time.time(), log)
    for _ in range(rounds):
        current = _statements_flushed(counter, time.time(), log)
        if current == previous:
            return
        previous = current


def seed(session: Session, name: str, domain: str, count: int) -> Seeded:
    """An org, its inviter and ``count`` Contacts with valid addresses (one bulk INSERT)."""
    org = orgs.create_org(
        session,
        name=name,
        company_domain=domain,
        country="US",
        edition="enterprise",
        from_email="portal@zylker-support.com",
        from_name="Zylker Customer Portal",
        reply_to="help@zylker-support.com",
    )
    user_type = next(t for t in org.user_types if t.is_client_portal)
    inviter = orgs.add_crm_user(
        session, org.id, name="Russell Brown", email=f"russell@{domain}", modules=["Contacts"]
    )
    rows = [
        {**_record_values(n), "org_id": org.id, "owner_id": inviter.id, "fields": {}}
        for n in range(count)
    ]
    session.execute(insert(CrmRecord), rows)
    return Seeded(org.id, user_type.id, inviter.id, [row["crm_id"] for row in rows])


def start(
    factory: sessionmaker[Session],
    seeded: Seeded,
    chunk_size: int,
    enqueue_chunks: Callable[[list[int]], int],
) -> int:
    """Write the run and its chunks, commit, then enqueue the chunks, as the CLI does."""
    with factory() as session:
        started = bulk.start_bulk_run(
            session,
            org_id=seeded.org_id,
            user_type_id=seeded.user_type_id,
            inviter_id=seeded.inviter_id,
            crm_ids=seeded.crm_ids,
            chunk_size=chunk_size,
        )
        session.commit()
    enqueue_chunks(started.chunk_ids)
    return started.run_id


def _finished(factory: sessionmaker[Session], run_id: int) -> bool:
    with factory() as session:
        return reports.progress(session, [run_id])[2]


def _wait(
    done: Callable[[], bool], what: str, log: Path, meanwhile: Callable[[], object] = bool
) -> None:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not done():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise SystemExit(f"{what} did not finish in {TIMEOUT_SECONDS:.0f} s\n{tail}")
        meanwhile()
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    main()
