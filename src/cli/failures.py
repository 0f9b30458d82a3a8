"""``portalflow failures``: who failed and why, for an org, a bulk run or a user type."""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.pipelines.ops import failure_reports
from portalflow.pipelines.ops.failure_reports import FailureFilter

from .common import console, fail, open_session, print_json

INVITEES_SHOWN = 50


BulkRunOption = Annotated[
    int | None, typer.Option("--bulk-run", help="Only the invitees of this bulk run.")
]
UserTypeOption = Annotated[
    int | None, typer.Option("--user-type", help="Only the invitees of this user type.")
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only invitations created at or after this ISO 8601 date or time "
        "(e.g. 2026-11-01 or 2026-11-01T09:30; without an offset it is UTC).",
    ),
]
IncludeResolved = Annotated[
    bool,
    typer.Option(
        "--include-resolved",
        help="Also count and list failures resolved since: the record was invited again "
        "or its portal user is now confirmed (marked in a 'resolved' column).",
    ),
]
AsCsv = Annotated[bool, typer.Option("--csv", help="Write the failed invitees as CSV to stdout.")]
Limit = Annotated[
    int, typer.Option("--limit", min=0, help="At most this many invitees (newest failure first).")
]


def failures(
    org: Annotated[int, typer.Option("--org", help="Org id.", show_default=False)],
    bulk_run: BulkRunOption = None,
    user_type: UserTypeOption = None,
    since: SinceOption = None,
    include_resolved: IncludeResolved = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    as_csv: AsCsv = False,
    limit: Limit = failure_reports.DEFAULT_LIMIT,
) -> None:
    """Report failed invitees: counts by reason, by outcome and by user type, and who failed.

    A failed invitee was refused before the send, failed at the provider (retries ran out,
    the provider refused it ...), or was accepted by the provider and then bounced for good
    or drew a spam complaint. The report tells the present: a failure whose record was
    invited again since, or whose portal user is now confirmed, is resolved and left out
    (counted apart) unless --include-resolved.

    Examples:

    - `portalflow failures --org 1`: a summary and the newest failed invitees

    - `portalflow failures --org 1 --bulk-run 12 --json`: one run's report as JSON

    - `portalflow failures --org 1 --user-type 2 --since 2026-11-01 --csv > failed.csv`

    - `portalflow failures --org 1 --bulk-run 12 --include-resolved`: also who was fixed since
    """
    if as_json and as_csv:
        fail("choose one of --json and --csv, not both")
    since_at = parse_since(since) if since is not None else None
    query = FailureFilter(
        org_id=org,
        bulk_run_id=bulk_run,
        user_type_id=user_type,
        since=since_at,
        include_resolved=include_resolved,
    )
    with open_session() as session:
        report = failure_reports.failure_report(session, query, limit=limit)
    if as_json:
        print_json(report)
    elif as_csv:
        sys.stdout.write(csv_text(report))
    else:
        print_failure_report(report)


def parse_since(value: str) -> datetime:
    """An ISO 8601 date or date-time; naive values are UTC. Exits with code 2 when bad."""
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"--since {value!r} is not an ISO 8601 date or date-time "
            "(e.g. 2026-11-01 or 2026-11-01T09:30:00+05:30)"
        )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def csv_text(report: dict[str, Any]) -> str:
    """The report's invitees as CSV: a header row, then one invitee per line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=failure_reports.CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(failure_reports.rows_for_csv(report))
    return buffer.getvalue()


def print_failure_report(report: dict[str, Any]) -> None:
    """A Rich summary: the totals, three count tables and the newest failed invitees."""
    scope = [f"org {report['org_id']}"]
    chosen = report["filter"]
    if chosen["bulk_run_id"] is not None:
        scope.append(f"bulk run {chosen['bulk_run_id']}")
    if chosen["user_type_id"] is not None:
        scope.append(f"user type {chosen['user_type_id']}")
    if chosen["since"]:
        scope.append(f"since {chosen['since']}")
    total = report["total_failed"]
    colour = "red" if total else "green"
    noun = "invitee" if total == 1 else "invitees"
    console.print(f"[bold {colour}]{total}[/] failed {noun} ({escape(', '.join(scope))}).")
    resolved = report.get("resolved", 0)
    if resolved and chosen.get("include_resolved"):
        console.print(f"{resolved} of them resolved since (invited again or confirmed).")
    elif resolved:
        console.print(
            f"{resolved} more failed earlier and are resolved since (invited again or "
            "confirmed); --include-resolved shows them."
        )
    if not total:
        return
    _print_counts(report)
    _print_invitees(report["invitees"], total, with_resolved=bool(chosen.get("include_resolved")))


def _print_counts(report: dict[str, Any]) -> None:
    """The three count tables: by reason (with its meaning), by outcome, by user type."""
    reasons = Table("reason", "count", "meaning", title="By reason")
    for code, count in report["by_reason"].items():
        reasons.add_row(escape(code), str(count), escape(failure_reports.describe_reason(code)))
    console.print(reasons)

    groups = Table("outcome", "count", title="By outcome")
    for group, count in report["by_outcome_class"].items():
        groups.add_row(group, str(count))
    console.print(groups)

    types = Table("user type", "name", "count", title="By user type")
    for row in report["by_user_type"]:
        types.add_row(str(row["user_type_id"]), escape(row["name"]), str(row["failed"]))
    console.print(types)


def _print_invitees(invitees: list[dict[str, Any]], total: int, *, with_resolved: bool) -> None:
    """The newest failed invitees, at most ``INVITEES_SHOWN``, and how many more there are."""
    if invitees:
        columns = ["CRM id", "address", "reason", "attempts", "detail", "at (UTC)"]
        if with_resolved:
            columns.append("resolved")
        table = Table(*columns, title="Failed invitees")
        for row in invitees[:INVITEES_SHOWN]:
            cells = [
                escape(row["crm_id"]),
                escape(row["address"] or ""),
                escape(row["reason"]),
                str(row["attempts"]),
                escape(row["detail"] or ""),
                (row["at"] or "")[:16].replace("T", " "),
            ]
            if with_resolved:
                cells.append(row["resolved"] or "")
            table.add_row(*cells)
        console.print(table)
    more = total - min(len(invitees), INVITEES_SHOWN)
    if more > 0:
        console.print(f"... and {more} more (use --json or --csv to see them).")
