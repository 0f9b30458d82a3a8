"""``portalflow licences reconcile | report | alerts``: the nightly reconciliation by hand,
its daily reports, and the alerts it raised. Plain functions; registered on the
``licences`` group in :mod:`portalflow.cli.licences`.
"""

from __future__ import annotations

import csv
import io
import sys
from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import utcnow
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.licensing import licence_alerts, licence_reports, reconciliation

from .common import console, fail, open_session, print_json

DateOption = Annotated[
    str | None,
    typer.Option("--date", help="The day, YYYY-MM-DD (UTC).", show_default=False),
]
OrgOption = Annotated[
    int | None, typer.Option("--org", help="Only this org (see `portalflow orgs list`).")
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

CSV_FIELDS = (
    "org_id",
    "day",
    "edition",
    "holders",
    "licences",
    "monthly_price_usd",
    "overage",
    "near_limit_types",
    "overage_types",
    "trial_expired",
    "deletion_scheduled_for",
    "counters_corrected",
)


def reconcile(day: DateOption = None, org: OrgOption = None) -> None:
    """Recount licence use, fix drifted counters, price the month and write the day's report.

    With `--date` reconciles that one day. Without it does what the nightly job does: every
    day each org missed since its last report, through today. A past day is recounted from
    the users as they are now (history is not kept), against the purchases in force then.
    Running it again for a day rewrites that day's report; alerts are never raised twice.

    Examples:

    - `portalflow licences reconcile`: catch up every org through today

    - `portalflow licences reconcile --date 2026-11-23 --org 1`
    """
    org_ids = [org] if org is not None else None
    with open_session() as session:
        if day is None:
            summary = reconciliation.catch_up(session, utcnow().date(), org_ids=org_ids)
        else:
            summary = reconciliation.reconcile(session, parse_day(day), org_ids=org_ids)
    console.print(
        f"reconciled [bold]{summary.orgs}[/] orgs: {summary.reports_written} reports written, "
        f"{summary.counters_corrected} counters corrected, {summary.alerts_raised} alerts raised"
    )


def report(
    day: DateOption = None,
    org: OrgOption = None,
    as_json: Json = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write the reports as CSV.")] = False,
) -> None:
    """Show licence reports: each org's latest, or every org's for `--date`.

    Examples:

    - `portalflow licences report`: the latest report of every org

    - `portalflow licences report --org 1 --json`

    - `portalflow licences report --date 2026-11-23 --csv > licences.csv`
    """
    if as_json and as_csv:
        fail("choose one of --json and --csv, not both")
    with open_session() as session:
        rows = licence_reports.latest_reports(session, parse_day(day) if day else None, org)
        reports = [licence_reports.report_summary(row) for row in rows]
    if as_json:
        print_json(reports)
    elif as_csv:
        sys.stdout.write(csv_text(reports))
    else:
        _print_reports(reports)


def alerts(org: OrgOption = None, as_json: Json = False) -> None:
    """List licence alerts (overage, near the limit, trial ended, deletion scheduled).

    Alerts are raised by `portalflow licences reconcile` and emailed, once, by the nightly
    job to the org's admin address when one is set.

    Example: `portalflow licences alerts --org 1 --json`
    """
    with open_session() as session:
        found = [
            licence_reports.alert_summary(alert)
            for alert in licence_alerts.list_alerts(session, org)
        ]
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No licence alerts.")
        return
    table = Table("id", "org", "day", "kind", "detail", "emailed", title="Licence alerts")
    for alert in found:
        table.add_row(
            str(alert["id"]),
            str(alert["org_id"]),
            alert["day"],
            alert["kind"],
            escape(alert["detail"]),
            alert["emailed_at"] or "-",
        )
    console.print(table)


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"--date {value!r} is not a date in the form YYYY-MM-DD") from None


def csv_text(reports: list[dict[str, Any]]) -> str:
    """One line per report; the per-type figures folded into the two ``*_types`` columns."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for summary in reports:
        types = summary["user_types"]
        writer.writerow(
            {
                **{name: summary.get(name) for name in CSV_FIELDS},
                "near_limit_types": ";".join(t["name"] for t in types if t["near_limit"]),
                "overage_types": ";".join(t["name"] for t in types if t["overage"]),
                "deletion_scheduled_for": summary["deletion_scheduled_for"] or "",
            }
        )
    return buffer.getvalue()


def _print_reports(reports: list[dict[str, Any]]) -> None:
    if not reports:
        console.print("No licence reports yet; run `portalflow licences reconcile`.")
        return
    table = Table(
        "org",
        "day",
        "edition",
        "holders",
        "licences",
        "monthly $",
        "flags",
        title="Licence reports",
    )
    for summary in reports:
        flags = [
            f"overage: {t['name']} {t['holders']}/{t['licences']}"
            for t in summary["user_types"]
            if t["overage"]
        ]
        flags += [
            f"near limit: {t['name']} {t['holders']}/{t['licences']}"
            for t in summary["user_types"]
            if t["near_limit"] and not t["overage"]
        ]
        if summary["trial_expired"]:
            flags.append("trial expired")
        if summary["deletion_scheduled_for"]:
            flags.append(f"deletion on {summary['deletion_scheduled_for']}")
        if summary["counters_corrected"]:
            flags.append(f"{summary['counters_corrected']} counters corrected")
        table.add_row(
            str(summary["org_id"]),
            summary["day"],
            summary["edition"],
            str(summary["holders"]),
            str(summary["licences"]),
            summary["monthly_price_usd"],
            escape("; ".join(flags)) or "-",
        )
    console.print(table)
