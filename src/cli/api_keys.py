"""``portalflow api-keys``: the per-org keys a CRM uses for ``POST /events`` and the admin API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.pipelines.tenancy import api_keys

from .common import console, new_app, open_session, print_json

app = new_app("Create, list and revoke the per-org API keys of the HTTP API.")


@app.command("create")
def create(
    org: Annotated[int, typer.Option(help="Org id the key acts for.")],
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. zoho-crm.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a key and print it once: only its hash is kept, it cannot be shown again.

    Example: `portalflow api-keys create --org 1 --name zoho-crm`
    """
    with open_session() as session:
        key, plaintext = api_keys.create_key(session, org, name)
        prefix, key_id = key.prefix, key.id
    if as_json:
        print_json({"id": key_id, "org_id": org, "name": name, "prefix": prefix, "key": plaintext})
        return
    console.print(f"API key [bold]{prefix}[/] for org {org} (shown only now; store it safely):")
    typer.echo(plaintext)


@app.command("list")
def list_(
    org: Annotated[int, typer.Option(help="Org id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List an org's keys by prefix and name (never the keys themselves)."""
    with open_session() as session:
        keys = api_keys.list_keys(session, org)
    if as_json:
        print_json(keys)
        return
    table = Table(title=f"API keys of org {org}")
    for column in ("prefix", "name", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["prefix"],
            escape(key["name"]),
            str(key["created_at"]),
            str(key["revoked_at"] or "-"),
        )
    console.print(table)


@app.command("revoke")
def revoke(
    org: Annotated[int, typer.Option(help="Org id.")],
    prefix: Annotated[str, typer.Option(help="The key's prefix, as `list` shows it.")],
) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    with open_session() as session:
        key = api_keys.revoke(session, org, prefix)
        when = key.revoked_at
    console.print(f"API key [bold]{escape(prefix)}[/] of org {org} revoked at {when}.")
