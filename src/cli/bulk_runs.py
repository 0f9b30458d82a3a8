"""``portalflow bulk-runs``: read a run's totals and its failed invitees."""

from __future__ import annotations

from typing import Annotated

import typer

from portalflow.pipelines import reports

from .common import new_app, open_session, print_json
from .invite import print_run_report

app = new_app("Read bulk runs: totals, failures by reason, failed invitees.")


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
