"""Alembic environment: runs against the URL handed over in the config, or the settings'."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import event

from portalflow.config import Settings
from portalflow.models import Base
from portalflow.models.session import make_engine

config = context.config


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    if engine.dialect.name == "sqlite":
        # Batch mode rebuilds a table as a copy: with foreign keys enforced, dropping the
        # original would cascade to, or fail on, the rows of the tables that reference it.
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=Base.metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
