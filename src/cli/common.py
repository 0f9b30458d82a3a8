"""What every command shares: settings, a session, consoles, and one place that turns errors
into a red ``error: ...`` line and exit code 2 instead of a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from portalflow.config import Settings, SettingsError
from portalflow.models import make_engine, make_session_factory, session_scope
from portalflow.pipelines.errors import PortalflowError

EXIT_ROWS_FAILED = 1
EXIT_FATAL = 2

console = Console()
err_console = Console(stderr=True)

# SQLSTATEs of PostgreSQL and the messages of SQLite for a schema that is missing or old.
_MISSING_TABLE_STATES = {"42P01"}
_MISSING_COLUMN_STATES = {"42703"}


def new_app(help: str) -> typer.Typer:
    """A command group with the house style: Markdown help, help when run without args."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode="markdown")


def fail(message: str, code: int = EXIT_FATAL) -> NoReturn:
    """Print ``error: <message>`` in red on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings() -> Settings:
    """Settings from the ``PORTALFLOW_*`` environment, or a clean error exit."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        fail(str(exc))


def masked_url(url: str) -> str:
    """The database URL with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


@contextmanager
def open_session(config: Settings | None = None) -> Iterator[Session]:
    """A session on the configured database: commits on success, rolls back on error."""
    config = config or settings()
    engine = make_engine(config.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def errors_as_exit() -> Iterator[None]:
    """Turn the errors a user can act on into ``error: ...`` and exit code 2."""
    try:
        yield
    except (PortalflowError, SettingsError) as exc:
        fail(str(exc))
    except IntegrityError as exc:
        fail(f"the database refused the change: {_first_line(exc.orig)}")
    except DBAPIError as exc:
        fail(_database_problem(exc))


class PortalflowGroup(TyperGroup):
    """The root command group: every subcommand runs inside :func:`errors_as_exit`."""

    def invoke(self, ctx: Any) -> Any:
        with errors_as_exit():
            return super().invoke(ctx)


ERRORS_SHOWN = 50


def print_import_summary(summary: str, errors: Sequence[Any]) -> None:
    """An import's one-line summary, then its first row errors (``.line``, ``.message``)."""
    colour = "red" if errors else "green"
    noun = "row" if len(errors) == 1 else "rows"
    console.print(f"{summary}, [bold {colour}]{len(errors)}[/] {noun} failed")
    if not errors:
        return
    table = Table(title="Rows not loaded")
    table.add_column("line", justify="right")
    table.add_column("problem", overflow="fold")
    for error in errors[:ERRORS_SHOWN]:
        table.add_row(str(error.line), escape(error.message))
    console.print(table)
    hidden = len(errors) - ERRORS_SHOWN
    if hidden > 0:
        console.print(f"... and {hidden} more; use --json to see every row error")


# The one --json flag of every command that prints a result.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout, uncoloured when stdout is not a terminal."""
    console.print_json(json.dumps(obj, default=str, ensure_ascii=False))


def _database_problem(exc: DBAPIError) -> str:
    where = _database_label()
    state = getattr(exc.orig, "sqlstate", None)
    text = str(exc.orig).lower()
    if state in _MISSING_TABLE_STATES or "no such table" in text:
        return f"the database at {where} has no portalflow schema; run `portalflow db upgrade`"
    if state in _MISSING_COLUMN_STATES or "no such column" in text or "has no column" in text:
        return f"the database at {where} has an older schema; run `portalflow db upgrade`"
    return f"cannot use the database at {where}: {_first_line(exc.orig)}"


def _database_label() -> str:
    try:
        return masked_url(Settings.from_env().database_url)
    except SettingsError:
        return "PORTALFLOW_DATABASE_URL"


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or ["(no detail)"])[0]


# The --org option of the commands that act on one org.
OrgId = Annotated[int, typer.Option("--org", help="The org's id (see `portalflow orgs list`).")]


def print_table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Print ``rows`` under ``columns`` as a table; None shows as "-", values never as markup."""
    table = Table(title=escape(title))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Names come from users: never let a '[' in them read as Rich markup.
        table.add_row(*(escape("-" if value is None else str(value)) for value in row))
    console.print(table)
