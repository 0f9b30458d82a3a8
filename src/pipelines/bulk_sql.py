"""Set-based writes of many rows in one statement, whatever the row count.

On PostgreSQL a chunk's rows go in as one ``INSERT ... SELECT FROM unnest(arrays)``: one
short statement text per column set, which psycopg converts once and prepares, where a
multi-row ``VALUES`` of 500 rows is a new 10,000-parameter text every time (its conversion
alone cost more than the insert). Elsewhere (SQLite) SQLAlchemy's multi-row INSERT serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Table, TextClause, bindparam, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

_POSTGRESQL = postgresql.dialect()


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str],
) -> list[Row[Any]]:
    """Insert ``rows`` (all with the same keys) in one statement; the ``returning`` columns.

    The returned rows come in no promised order: callers match them on a key they wrote.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        statement = insert(table).returning(*(table.c[name] for name in returning))
        return list(session.execute(statement, list(rows)).all())
    columns = tuple(rows[0])
    statement = _unnest_insert(table, columns, tuple(returning))
    values = {f"c{i}": [row[name] for row in rows] for i, name in enumerate(columns)}
    return list(session.execute(statement, values).all())


@lru_cache(maxsize=64)
def _unnest_insert(
    table: Table, columns: tuple[str, ...], returning: tuple[str, ...]
) -> TextClause:
    arrays = ", ".join(
        f"CAST(:c{i} AS {_array_type(table, name)})" for i, name in enumerate(columns)
    )
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"SELECT * FROM unnest({arrays}) RETURNING {', '.join(returning)}"
    )
    return (
        text(sql)
        .bindparams(
            *(
                bindparam(f"c{i}", type_=postgresql.ARRAY(table.c[name].type))
                for i, name in enumerate(columns)
            )
        )
        .columns(*(table.c[name] for name in returning))
    )


def _array_type(table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=_POSTGRESQL)}[]"
