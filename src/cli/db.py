"""``portalflow db``: bring the database schema up to date and show where it stands."""

from __future__ import annotations

import typer
from alembic.script import ScriptDirectory
from rich.markup import escape

from portalflow.models.schema import alembic_config, current_revision, upgrade

from .common import console, masked_url, new_app, print_json, settings

app = new_app("Create or migrate the database schema (`PORTALFLOW_DATABASE_URL`).")

JsonOption = typer.Option(False, "--json", help="Print the result as JSON.")


@app.command("upgrade")
def upgrade_command(json_output: bool = JsonOption) -> None:
    """Apply every migration, creating the tables on a new database.

    Safe to run again: a database already at the latest revision is left as it is.

    Example:

        export PORTALFLOW_DATABASE_URL=postgresql+psycopg://app@db/portalflow
        portalflow db upgrade
    """
    url = settings().database_url
    upgrade(url)
    revision = current_revision(url)
    if json_output:
        print_json({"database": masked_url(url), "revision": revision})
    else:
        console.print(
            f"database at {escape(masked_url(url))} is at revision [bold]{revision}[/]",
            soft_wrap=True,
        )


@app.command("current")
def current_command(json_output: bool = JsonOption) -> None:
    """Show the database's schema revision and whether it is the latest.

    Example:

        portalflow db current
    """
    url = settings().database_url
    revision = current_revision(url)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if json_output:
        print_json(
            {
                "database": masked_url(url),
                "revision": revision,
                "head": head,
                "up_to_date": revision == head,
            }
        )
        return
    if revision is None:
        state = "has no portalflow schema; run `portalflow db upgrade`"
    elif revision == head:
        state = f"is at revision [bold]{revision}[/] (the latest)"
    else:
        state = f"is at revision [bold]{revision}[/], latest is {head}; run `portalflow db upgrade`"
    console.print(f"database at {escape(masked_url(url))} {state}", soft_wrap=True)
