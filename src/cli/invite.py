"""``portalflow invite``: invite one record, a list, or every uninvited record of a type."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from portalflow.models import describe_failure
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.ops import reports
from portalflow.workers import runtime, submit

from .common import EXIT_ROWS_FAILED, console, fail, print_json, settings
from .waiting import DEFAULT_WORKER_WAIT_SECONDS, EXIT_NO_WORKER, run_and_wait

EMBEDDED_TIMEOUT_SECONDS = 3600.0


Inviter = Annotated[
    int,
    typer.Option("--crm-user", "--inviter", help="Id of the inviting CRM user (or --inviter)."),
]
Records = Annotated[
    list[str] | None, typer.Option("--record", "-r", help="CRM id of a record; repeatable.")
]
RecordsFile = Annotated[
    Path | None,
    typer.Option(help="A file with one CRM id per line.", exists=True, dir_okay=False),
]
AllUninvited = Annotated[
    bool,
    typer.Option("--all", help="Every record of the type's module in no portal, with an address."),
]
Wait = Annotated[
    bool, typer.Option(help="Wait for the run to finish (always, with the embedded broker).")
]
WaitForWorker = Annotated[
    float,
    typer.Option(
        "--wait-for-worker",
        min=0,
        metavar="SECONDS",
        help="With Redis or RabbitMQ: how long to wait for a worker to take the run before "
        f"giving up with exit code {EXIT_NO_WORKER} (the run stays queued). A missing "
        "worker is said after 5 s at most.",
    ),
]


def invite(
    org: Annotated[int, typer.Option(help="Org id.")],
    user_type: Annotated[int, typer.Option("--user-type", help="User type id to invite into.")],
    inviter: Inviter,
    record: Records = None,
    records_file: RecordsFile = None,
    all_uninvited: AllUninvited = False,
    language: Annotated[str, typer.Option(help="Template language: en fr de es ja hi.")] = "en",
    wait: Wait = True,
    wait_for_worker: WaitForWorker = DEFAULT_WORKER_WAIT_SECONDS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
) -> None:
    """Invite records into a portal user type: by id, from a file, or **--all** uninvited.

    The request is written to the database first, then queued. With the embedded broker
    (no `PORTALFLOW_BROKER_URL`) a worker runs inside this command; with Redis, run
    `portalflow worker` somewhere and this command waits (or not, with `--no-wait`). If no
    worker consumes the queue it says so within 5 s and, after `--wait-for-worker` seconds
    (10) with still none, exits 3 leaving the run queued for when a worker starts.

    Exit codes: 0 every invitee sent (or queued, with `--no-wait`); 1 some invitees failed;
    2 bad input; 3 no worker took the run.

    Example: `portalflow invite --org 1 --user-type 1 --crm-user 1 -r C-100 -r C-101 --language fr`
    """
    crm_ids = _requested_ids(record, records_file, all_uninvited)
    config = settings()
    current = runtime.configure(config)
    request = submit.invite(
        org_id=org,
        user_type_id=user_type,
        inviter_id=inviter,
        crm_ids=crm_ids,
        language=language,
        chunk_size=config.bulk_chunk_size,
    )

    def start() -> int:
        with current.session() as session:
            return submit.submit(session, request).run_id

    run_id, finished = run_and_wait(
        config,
        current.session_factory,
        start,
        wait=wait,
        timeout=EMBEDDED_TIMEOUT_SECONDS,
        worker_wait=wait_for_worker,
    )
    _finish(current, run_id, finished, as_json)


def _finish(current: runtime.Runtime, run_id: int, finished: bool, as_json: bool) -> None:
    """Print the run's report; exit 1 when some invitees failed."""
    with current.session() as session:
        report = reports.bulk_run_report(session, run_id)
    if as_json:
        print_json(report)
    else:
        print_run_report(report)
        if not finished:
            console.print(f"Queued. Follow it with [bold]portalflow bulk-runs show {run_id}[/].")
    if report["failed"]:
        raise typer.Exit(EXIT_ROWS_FAILED)


def _requested_ids(
    records: list[str] | None, records_file: Path | None, all_uninvited: bool
) -> list[str] | None:
    chosen = [bool(records), records_file is not None, all_uninvited]
    if sum(chosen) != 1:
        fail("choose exactly one of --record, --records-file or --all")
    if all_uninvited:
        return None
    if records_file is not None:
        lines = records_file.read_text(encoding="utf-8").splitlines()
        ids = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not ids:
            raise InvalidInput(f"{records_file} has no record ids")
        return ids
    return list(records or [])


def print_run_report(report: dict) -> None:
    """Totals, failures by reason, and the first failed invitees."""
    console.print(
        f"Bulk run [bold]{report['id']}[/] ({report['status']}): "
        f"[green]{report['sent']} sent[/], [red]{report['failed']} failed[/], "
        f"{report['queued']} in flight, of {report['requested']} requested."
    )
    if report["failed_by_reason"]:
        console.print(reason_table(report["failed_by_reason"]))
    if report["failed_invitees"]:
        table = Table("CRM id", "address", "reason", "detail", title="Failed invitees")
        for row in report["failed_invitees"][:50]:
            table.add_row(row["crm_id"], row["address"] or "", row["reason"], row["detail"] or "")
        console.print(table)
        more = report["failed"] - 50
        if more > 0:
            console.print(f"... and {more} more (use --json for all of them).")


def reason_table(failed_by_reason: dict[str, int], title: str = "Failed, by reason") -> Table:
    table = Table("reason", "count", "meaning", title=title)
    for code, count in failed_by_reason.items():
        table.add_row(code, str(count), describe_failure(code))
    return table
