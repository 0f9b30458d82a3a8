"""Private servers for the fault tests: each test may flush, restart or kill what it owns."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bench import harness
from portalflow.models import make_engine, make_session_factory
from portalflow.workers import broker

from ..servers import require_binary
from ..smtp_server import SmtpServer, running_smtp_server
from .rig import Rig


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[harness.PrivatePostgres]:
    """One private PostgreSQL cluster for every fault test (a test may restart it)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    require_binary("pg_ctl", found[0] if found else None)
    with harness.private_postgres() as cluster:
        yield cluster


@pytest.fixture
def database_url(pg_cluster: harness.PrivatePostgres) -> Iterator[str]:
    """A fresh, migrated database on the private cluster, dropped after the test."""
    url = ""
    try:
        with harness.temporary_database(pg_cluster.admin_url) as url:
            yield url
    except OperationalError:
        if not url:
            raise
        # The harness's admin engine pools the connection it created the database with;
        # after a restart that connection is dead and the drop fails: drop it afresh.
        admin = create_engine(pg_cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            name = url.rsplit("/", 1)[1]
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_server() -> Iterator[harness.PrivateRedis]:
    require_binary("redis-server")
    with harness.private_redis() as server:
        yield server


@pytest.fixture
def queue(redis_server: harness.PrivateRedis) -> Iterator[RedisBroker]:
    """Our actors declared on the private Redis, so the test enqueues where the workers read."""
    previous = dramatiq.get_broker()
    redis_broker = RedisBroker(url=redis_server.url)
    broker.install(redis_broker)
    try:
        yield redis_broker
    finally:
        broker.install(previous)
        redis_broker.close()


@pytest.fixture
def mail_sink() -> Iterator[SmtpServer]:
    """An SMTP server that records every message, reached by the workers over TCP."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def rig(
    request: pytest.FixtureRequest,
    database_url: str,
    redis_server: harness.PrivateRedis,
    queue: RedisBroker,
    tmp_path: Path,
) -> Iterator[Rig]:
    """The shared setup of a fault test; the SMTP sink is started if the test uses it."""
    engine = make_engine(database_url)
    try:
        yield Rig(
            database_url=database_url,
            redis_server=redis_server,
            tmp_path=tmp_path,
            factory=make_session_factory(engine),
            get_mail_sink=lambda: request.getfixturevalue("mail_sink"),
        )
    finally:
        engine.dispose()
