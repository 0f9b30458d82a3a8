"""Private servers and worker processes for the benchmarks and the fault tests.

Each piece is a context manager that starts a real program on a free loopback port and
stops it on exit, so a benchmark or fault test owns what it measures or breaks: a Redis it
may flush, a PostgreSQL cluster it may restart, Postfix's ``smtp-sink``, and ``dramatiq``
worker processes it may SIGKILL and start again.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

from portalflow.models.schema import upgrade

SHARED_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SMTP_SINK = "/usr/sbin/smtp-sink"


class HarnessError(RuntimeError):
    """A program the harness needs is missing or did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, what: str = "server") -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise HarnessError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def program(name: str, *candidates: str) -> str:
    """The path of a program, or HarnessError naming the Debian package to install."""
    for candidate in (*candidates, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise HarnessError(f"{name} is not installed (see the README's benchmark section)")


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program (initdb, pg_ctl) from Debian's versioned directory."""
    return program(name, *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True))


@dataclass
class PrivateRedis:
    """A ``redis-server`` of our own that keeps nothing on disk."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flushall(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """Start a throwaway Redis on a free port; stopped on exit."""
    port = free_port()
    argv = [program("redis-server"), "--bind", "127.0.0.1", "--port", str(port)]
    argv += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, what="redis-server")
        yield PrivateRedis(port, process)
    finally:
        _stop(process)


@contextmanager
def temporary_database(admin_url: str = SHARED_POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database on the shared server; dropped on exit."""
    name = f"portalflow_bench_{uuid.uuid4().hex[:10]}"
    # pre_ping: a fault test may have restarted the server since the database was made.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def configured_or_temporary_database() -> Iterator[str]:
    """``PORTALFLOW_BENCH_DATABASE_URL`` when set (an existing database), else a temporary one."""
    configured = os.environ.get("PORTALFLOW_BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    with temporary_database() as url:
        yield url


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary directory), restartable."""

    data_dir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("start", "-w", "-o", options, "-l", str(self.data_dir / "server.log"))

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-w", "-m", mode)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server (dropping every connection), wait, and start it again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def _pg_ctl(self, *args: str) -> None:
        run = [postgres_bin("pg_ctl"), "-D", str(self.data_dir), *args]
        subprocess.run(run, check=True, capture_output=True, **_as_postgres_user())


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb a cluster (trust auth, user postgres) on a free port, start it; removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="portalflow-pg-"))
    data_dir = root / "data"
    data_dir.mkdir()
    _chown_to_postgres(root)
    subprocess.run(
        [postgres_bin("initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
        **_as_postgres_user(),
    )
    cluster = PrivatePostgres(data_dir, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _as_postgres_user() -> dict[str, object]:
    """PostgreSQL refuses to run as root: drop to the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        for child in path.rglob("*"):
            shutil.chown(child, "postgres", "postgres")


@dataclass
class SmtpSink:
    """Postfix's ``smtp-sink``: accepts every message and throws it away, in C."""

    port: int
    process: subprocess.Popen[bytes]


@contextmanager
def smtp_sink(backlog: int = 256) -> Iterator[SmtpSink]:
    """Start ``smtp-sink`` on a free port; stopped on exit."""
    port = free_port()
    argv = [program("smtp-sink", SMTP_SINK), "-u", "nobody", f"127.0.0.1:{port}", str(backlog)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, what="smtp-sink")
        yield SmtpSink(port, process)
    finally:
        _stop(process)


def worker_env(
    database_url: str, broker_url: str, var_dir: str | Path, **settings: object
) -> dict[str, str]:
    """PORTALFLOW_* for worker processes: ours are blanked, then these set (name=value)."""
    env = {name: "" for name in os.environ if name.startswith("PORTALFLOW_")}
    env.update(
        PORTALFLOW_DATABASE_URL=database_url,
        PORTALFLOW_BROKER_URL=broker_url,
        PORTALFLOW_VAR_DIR=str(var_dir),
    )
    env.update({f"PORTALFLOW_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def smtp_settings(port: int) -> dict[str, object]:
    """Worker settings for the SMTP channel to a server on 127.0.0.1:``port``."""
    return {"email_channel": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}


@dataclass
class Workers:
    """``dramatiq MODULE`` in its own process group: stop, SIGKILL, start again."""

    env: Mapping[str, str]
    module: str = "portalflow.workers"  # what `dramatiq` imports: the actors and their broker
    processes: int = 2
    threads: int = 8
    queues: tuple[str, ...] = ()
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    kills: int = field(default=0, init=False)

    def start(self) -> None:
        argv = [sys.executable, "-m", "dramatiq", self.module]
        argv += ["--processes", str(self.processes), "--threads", str(self.threads)]
        if self.queues:
            argv += ["--queues", *self.queues]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        # Prefetch as many messages as there are threads (Dramatiq's default is twice that):
        # otherwise the first process to poll takes most of a run's chunks and the other idles.
        prefetch = {"dramatiq_queue_prefetch": str(self.threads)}
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **prefetch, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL every process of the group (the parent and its worker processes) at once."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def stop(self, timeout: float = 30.0) -> None:
        """Ask for a graceful shutdown (SIGTERM); SIGKILL whatever is left after ``timeout``."""
        if self.process is None:
            return
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def restart_killed(self) -> None:
        self.kill()
        self.start()


@contextmanager
def worker_processes(env: Mapping[str, str], **options: object) -> Iterator[Workers]:
    """Start Dramatiq worker processes with ``env`` added to ours; stopped on exit."""
    workers = Workers(env, **options)  # type: ignore[arg-type]
    workers.start()
    try:
        yield workers
    finally:
        workers.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
