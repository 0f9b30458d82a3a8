"""``portalflow bulk-runs``: find runs, and read a run's totals and its failed invitees."""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import BulkAction, BulkRunStatus
from portalflow.pipelines.invitations import run_listing
from portalflow.pipelines.ops import reports

from .common import console, fail, new_app, open_session, print_json
from .invite import print_run_report

app = new_app("Find bulk runs, and read one: totals, failures by reason, failed invitees.")

CSV_COLUMNS = (
    "id", "org_id", "user_type_id", "user_type", "action", "status", "requested", "sent",
    "failed", "queued", "inviter_id", "created_at", "finished_at",
)  # fmt: skip


@app.command("list")
def list_runs(
    org: Annotated[int | None, typer.Option(help="Only this org's runs.")] = None,
    user_type: Annotated[
        int | None, typer.Option("--user-type", help="Only runs into this user type.")
    ] = None,
    status: Annotated[BulkRunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    action: Annotated[
        BulkAction | None, typer.Option(help="Only invites, reinvites, deactivations, ...")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(help="Only runs started at or after this moment (UTC), e.g. 2026-12-01."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=run_listing.MAX_PAGE_SIZE, help="Runs per page.")
    ] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Runs to skip (newest first).")] = 0,
    page: Annotated[
        int | None, typer.Option(min=1, help="Page number (1: newest); instead of --offset.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print as CSV, with a header.")] = False,
) -> None:
    """List bulk runs, newest first: id, user type, action, status and totals.

    Example: `portalflow bulk-runs list --org 1 --status running --since 2026-12-01 --page 2`
    """
    if as_json and as_csv:
        fail("choose one of --json or --csv")
    if page is not None:
        if offset:
            fail("choose one of --page or --offset")
        offset = (page - 1) * limit
    with open_session() as session:
        found = run_listing.list_bulk_runs(
            session,
            org_id=org,
            user_type_id=user_type,
            status=status,
            action=action,
            since=since,
            limit=limit,
            offset=offset,
        )
    if as_json:
        print_json(found.as_dict())
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(found.runs)
    elif not found.runs:
        console.print("No bulk run matches." if not found.total else "No runs on this page.")
    else:
        _print_runs(found)


def _print_runs(found: run_listing.RunPage) -> None:
    first, last = found.offset + 1, found.offset + len(found.runs)
    table = Table(
        "id", "org", "user type", "action", "status", "requested", "sent", "failed",
        "in flight", "started (UTC)", title=f"Bulk runs {first}-{last} of {found.total}",
    )  # fmt: skip
    for run in found.runs:
        user_type = escape(f"{run['user_type']} ({run['user_type_id']})")
        table.add_row(
            str(run["id"]), str(run["org_id"]), user_type,
            run["action"], run["status"], str(run["requested"]), str(run["sent"]),
            str(run["failed"]), str(run["queued"]), run["created_at"][:19].replace("T", " "),
        )  # fmt: skip
    console.print(table)
    if last < found.total:
        console.print(f"... {found.total - last} more: --offset {last} (or the next --page).")


@app.command("show")
def show(
    run_id: Annotated[int, typer.Argument(help="Bulk run id.")],
    org: Annotated[int | None, typer.Option(help="Refuse a run of any other org.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a bulk run: how many were sent and failed, and why each failed invitee failed.

    Example: `portalflow bulk-runs show 12 --json`
    """
    with open_session() as session:
        report = reports.bulk_run_report(session, run_id, org_id=org)
    if as_json:
        print_json(report)
    else:
        print_run_report(report)
