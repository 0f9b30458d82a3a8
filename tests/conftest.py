"""Shared fixtures: real PostgreSQL and SQLite databases, migrated once, emptied per test."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import Base, make_engine, make_session_factory
from portalflow.models.schema import upgrade
from portalflow.workers import broker, runtime

from .moto_server import reset, running_moto_server
from .servers import require_server
from .smtp_server import SmtpServer, running_smtp_server

PG_HOST = os.environ.get("PORTALFLOW_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PORTALFLOW_TEST_PG_PORT", "5432"))
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres"
REDIS_URL = os.environ.get("PORTALFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

_migrated: dict[str, str] = {}


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'portalflow.db'}"


@contextmanager
def empty_postgres_database(prefix: str = "portalflow_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (not migrated); dropped on exit."""
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    with empty_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def pg_database_url(postgres_url: str) -> str:
    """For tests that need PostgreSQL only (concurrency, the Redis-broker workers)."""
    return postgres_url


def _migrate_once(url: str) -> None:
    if url not in _migrated:
        upgrade(url)
        _migrated[url] = url


def _empty_all_tables(engine: Engine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


def _empty_engine(url: str) -> Iterator[Engine]:
    """An engine on a migrated database with every table emptied."""
    _migrate_once(url)
    engine = make_engine(url)
    _empty_all_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    yield from _empty_engine(database_url)


@pytest.fixture
def pg_engine(pg_database_url: str) -> Iterator[Engine]:
    yield from _empty_engine(pg_database_url)


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def redis_url() -> str:
    require_server("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean PORTALFLOW_* environment with its state under tmp_path; returns the var dir."""
    for name in [n for n in os.environ if n.startswith("PORTALFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PORTALFLOW_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COLUMNS", "200")  # keep Rich from wrapping what the tests look for
    return tmp_path / "var"


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    path = tmp_path / "outbox"
    path.mkdir()
    return path


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials only; never whatever the developer's machine has configured."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def ses_endpoint(moto_endpoint: str, aws_env: None) -> str:
    reset(moto_endpoint)
    return moto_endpoint


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the workers")
        time.sleep(0.05)


def wait_for_run(session_factory: sessionmaker[Session], run_id: int) -> None:
    """Wait until the workers have finished a bulk run (its row says completed)."""
    from portalflow.models import BulkRun, BulkRunStatus

    def completed() -> bool:
        with session_factory() as session:
            return session.get_one(BulkRun, run_id).status == BulkRunStatus.COMPLETED

    wait_for(completed)


@pytest.fixture
def redis_broker(redis_url: str) -> Iterator[RedisBroker]:
    """A Redis broker in a namespace of its own, with our actors declared on it."""
    namespace = f"portalflow-test-{uuid.uuid4().hex[:8]}"
    redis_broker = RedisBroker(url=redis_url, namespace=namespace)
    broker.install(redis_broker)
    yield redis_broker
    keys = redis_broker.client.keys(f"{namespace}*")
    if keys:
        redis_broker.client.delete(*keys)
    redis_broker.close()


@pytest.fixture
def worker_settings(pg_database_url: str, outbox_dir: Path) -> Iterator[Settings]:
    """Runtime settings of the in-test workers: PostgreSQL and the file outboxes."""
    configured = Settings(
        var_dir=outbox_dir.parent,
        database_url=pg_database_url,
        email_channel="outbox",
        outbox_dir=outbox_dir,
    )
    runtime.configure(configured)
    yield configured


@pytest.fixture
def worker(
    redis_broker: RedisBroker, worker_settings: Settings, pg_engine: Engine
) -> Iterator[Worker]:
    """A real Dramatiq worker (2 threads) on the Redis broker."""
    running = Worker(redis_broker, worker_threads=2, worker_timeout=100)
    running.start()
    yield running
    running.stop()
