"""Engines and sessions for PostgreSQL and the embedded SQLite default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and writer-safe transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        # At least a worker's threads (8 by default): past pool_size, every checkout opens a
        # new connection and closes it on return, which the throughput benchmark showed as
        # hundreds of connections per bulk run.
        kwargs.setdefault("pool_size", 12)
        return create_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
    engine = create_engine(url, **kwargs)
    _make_sqlite_transactions_immediate(engine)
    return engine


def _make_sqlite_transactions_immediate(engine: Engine) -> None:
    # pysqlite's implicit deferred BEGIN lets two writers deadlock on lock upgrade and fail
    # at once instead of waiting; BEGIN IMMEDIATE makes the second writer wait its turn.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
