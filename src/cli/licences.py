"""``portalflow licences``: price quotes, licence purchases, their history, alert settings.

One function per command; more commands (reconcile, report, alerts) join this group.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import LicencePurchase, Org
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.licensing import pricing, purchases, seat_usage
from portalflow.pipelines.tenancy import orgs

from . import licence_reports
from .common import console, new_app, open_session, print_json

app = new_app(
    "Portal user licences: price quotes, purchases and their history, and licence alert settings."
)

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
OrgId = Annotated[int, typer.Option("--org", help="The org's id (see `portalflow orgs list`).")]
_MONEY_PLACEHOLDER = "\x00monthly_price_usd\x00"


@app.command("quote")
def quote(
    users: Annotated[
        int, typer.Argument(metavar="N", help="How many licences (portal users) to price.")
    ],
    org: Annotated[
        int | None,
        typer.Option("--org", help="Price with this org's own price slabs (default: standard)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Price N portal user licences per month with slab pricing.

    Standard slabs: users 1 - 1,000 at $3, 1,001 - 10,000 at $2, every user above 10,000 at
    $1 per user per month. With `--json` prints
    `{"users": N, "monthly_price_usd": X, "slabs": [...]}`, the price an exact decimal number
    and each slab's amounts in whole cents.

    Example:

        portalflow licences quote 12000 --json
    """
    slabs = pricing.STANDARD_SLABS
    if org is not None:
        with open_session() as session:
            slabs = pricing.slabs_from_data(orgs.get_org(session, org).price_slabs)
    result = pricing.quote(users, slabs)
    if json_output:
        typer.echo(quote_json(result))
    else:
        _print_quote(result, custom=org is not None)


def quote_json(result: pricing.Quote) -> str:
    """The quote as JSON; the price is written from its Decimal text, never through a float."""
    document = {
        "users": result.users,
        "monthly_price_usd": _MONEY_PLACEHOLDER,
        "slabs": result.slabs,
    }
    text = json.dumps(document, indent=2)
    return text.replace(json.dumps(_MONEY_PLACEHOLDER), result.monthly_usd, 1)


@app.command("purchase")
def purchase(
    org: OrgId,
    user_type: Annotated[
        int, typer.Option("--user-type", help="The paid user type's id (not the Client Portal).")
    ],
    quantity: Annotated[
        int,
        typer.Option(help="Licences the type holds from the effective date on (0 or more)."),
    ],
    effective: Annotated[str, typer.Option(help="The day the quantity takes effect, YYYY-MM-DD.")],
    note: Annotated[str | None, typer.Option(help="A note kept with the purchase.")] = None,
    json_output: Json = False,
) -> None:
    """Record a licence purchase: from the effective date the user type holds QUANTITY licences.

    A later purchase replaces the quantity from its own day (it may lower it). The Client
    Portal type is free and trial orgs cannot buy licences.

    Example:

        portalflow licences purchase --org 1 --user-type 2 --quantity 1500 \\
            --effective 2025-07-01 --note "PO 4711"
    """
    day = _parse_day(effective, "--effective")
    with open_session() as session:
        bought = purchases.record_purchase(session, org, user_type, quantity, day, note)
        names = _type_names(session, org)
        summary = _purchase_summary(bought, names)
        in_force = purchases.licences_in_force(session, user_type, date.today())
    if json_output:
        print_json({**summary, "in_force_today": in_force})
        return
    _print_purchases([summary], title="Licence purchase recorded")
    console.print(f"licences in force today for {escape(summary['user_type'])}: {in_force:,}")


@app.command("history")
def history(
    org: OrgId,
    user_type: Annotated[
        int | None, typer.Option("--user-type", help="Only this user type's purchases.")
    ] = None,
    json_output: Json = False,
) -> None:
    """List an org's licence purchases, newest effective date first.

    Example:

        portalflow licences history --org 1 --user-type 2 --json
    """
    with open_session() as session:
        names = _type_names(session, org)
        summaries = [
            _purchase_summary(row, names) for row in purchases.history(session, org, user_type)
        ]
    if json_output:
        print_json(summaries)
    elif not summaries:
        console.print(
            f"no licence purchases in org {org} yet; record one with `portalflow licences purchase`"
        )
    else:
        _print_purchases(summaries, title=f"Licence purchases of org {org}")


@app.command("settings")
def settings(
    org: OrgId,
    admin_email: Annotated[
        str | None,
        typer.Option(help='The address licence alerts are emailed to ("" clears it).'),
    ] = None,
    near_limit_percent: Annotated[
        int | None,
        typer.Option(help="Alert when a type uses this percentage of its licences (1-100)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Show or change an org's licence alert settings.

    Without options, shows the current settings.

    Example:

        portalflow licences settings --org 1 --admin-email admin@zylker.com \\
            --near-limit-percent 90
    """
    with open_session() as session:
        if admin_email is None and near_limit_percent is None:
            found = orgs.get_org(session, org)
        else:
            found = purchases.set_alert_settings(
                session, org, admin_email=admin_email, near_limit_percent=near_limit_percent
            )
        summary = _settings_summary(found)
    if json_output:
        print_json(summary)
        return
    table = Table(title=f"Licence settings of org {org}")
    table.add_column("setting")
    table.add_column("value")
    table.add_row("edition", summary["edition"])
    table.add_row("admin email", escape(summary["admin_email"] or "(none: alerts not emailed)"))
    table.add_row("near-limit percent", f"{summary['near_limit_percent']}%")
    table.add_row("price slabs", "custom" if summary["price_slabs"] else "standard")
    console.print(table)


@app.command("usage")
def usage(org: OrgId, json_output: Json = False) -> None:
    """Who holds each user type's licence seats, by status, and how many are left.

    Deactivated and removed users hold no seat. An invitee whose invitation expired keeps
    its seat until removed (`invitation_expired` below): remove it to free the seat.

    Example: `portalflow licences usage --org 1`
    """
    with open_session() as session:
        types = seat_usage.seat_usage(session, org)
    rows = [
        {
            "user_type_id": seats.user_type_id,
            "user_type": seats.name,
            "limit": seats.limit,
            "held": seats.held,
            "left": max(0, seats.limit - seats.held),
            "by_status": seats.by_status,
        }
        for seats in types
    ]
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"Licence seats of org {org}")
    for column in ("type", "limit", "held", "left", "users by status"):
        table.add_column(column)
    for row in rows:
        statuses = ", ".join(f"{n} {status}" for status, n in row["by_status"].items() if n)
        table.add_row(
            f"{row['user_type_id']} {escape(row['user_type'])}",
            str(row["limit"]),
            str(row["held"]),
            str(row["left"]),
            statuses or "-",
        )
    console.print(table)


def _parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not a date in the form YYYY-MM-DD") from None


def _type_names(session: Any, org_id: int) -> dict[int, str]:
    return {t.id: t.name for t in orgs.list_user_types(session, org_id)}


def _purchase_summary(row: LicencePurchase, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "org_id": row.org_id,
        "user_type_id": row.user_type_id,
        "user_type": names.get(row.user_type_id, str(row.user_type_id)),
        "quantity": row.quantity,
        "effective_from": row.effective_from.isoformat(),
        "note": row.note,
        "recorded_at": row.created_at.isoformat() if row.created_at else None,
    }


def _settings_summary(org: Org) -> dict[str, Any]:
    return {
        "org_id": org.id,
        "edition": org.edition.value,
        "admin_email": org.admin_email,
        "near_limit_percent": org.near_limit_percent,
        "price_slabs": org.price_slabs,
    }


def _print_purchases(summaries: list[dict[str, Any]], *, title: str) -> None:
    table = Table(title=title)
    table.add_column("id", justify="right")
    table.add_column("user type")
    table.add_column("quantity", justify="right")
    table.add_column("effective from")
    table.add_column("note", overflow="fold")
    table.add_column("recorded at")
    for row in summaries:
        table.add_row(
            str(row["id"]),
            f"{escape(row['user_type'])} ({row['user_type_id']})",
            f"{row['quantity']:,}",
            row["effective_from"],
            escape(row["note"] or ""),
            row["recorded_at"] or "",
        )
    console.print(table)


def _print_quote(result: pricing.Quote, *, custom: bool) -> None:
    kind = "the org's price slabs" if custom else "standard price slabs"
    table = Table(title=f"Monthly price of {result.users:,} licences ({kind})")
    table.add_column("slab")
    table.add_column("users", justify="right")
    table.add_column("price per user", justify="right")
    table.add_column("amount", justify="right")
    for slab in result.slabs:
        span = (
            f"{slab['from']:,} - {slab['to']:,}"
            if slab["to"] is not None
            else f"{slab['from']:,} +"
        )
        table.add_row(
            span,
            f"{slab['users']:,}",
            _usd(slab["cents_per_user"]),
            _usd(slab["cents"]),
        )
    table.add_section()
    table.add_row(
        "[bold]total[/]", f"{result.users:,}", "", f"[bold]{_usd(result.monthly_cents)}[/]"
    )
    console.print(table)


def _usd(cents: int) -> str:
    """``$23,000.00`` from whole cents, through Decimal."""
    whole, _, fraction = pricing.cents_to_usd(cents).partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}${int(whole.lstrip('-')):,}.{fraction}"


app.command("reconcile")(licence_reports.reconcile)
app.command("report")(licence_reports.report)
app.command("alerts")(licence_reports.alerts)
