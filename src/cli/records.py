"""``portalflow records``: load CRM records from CSV or JSON-lines files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from portalflow.pipelines.crm.record_files import SourceRow, read_record_file
from portalflow.pipelines.crm.records import ImportReport, import_records

from .common import (
    EXIT_ROWS_FAILED,
    err_console,
    new_app,
    open_session,
    print_import_summary,
    print_json,
)

app = new_app("Load CRM records (Contacts, Leads, ...) from files.")


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="A .csv (header row first) or .jsonl / .ndjson file.")
    ],
    org: Annotated[int, typer.Option("--org", help="The org the records belong to.")],
    module: Annotated[
        str | None, typer.Option(help="Module for rows that have no module column.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Create or update records by their CRM id (`crm_id`, or `id`).

    Recognised fields: `crm_id`, `module`, `first_name`, `last_name`, `email`, `phone`,
    `owner_email` (a CRM user of the org), `processing_basis` and the flags
    `approval_locked`, `review_locked`, `consent_given`, `in_recycle_bin`, `deleted`
    (true/false/yes/no/1/0). Every other column is kept as an extra field. A bad row is
    reported with its line number and the good rows still load.

    Exit codes: **0** every row loaded; **1** some rows failed and the good ones were
    saved; **2** nothing was saved (unknown org, unreadable file, unknown format).

    Example:

        portalflow records import contacts.csv --org 1 --module Contacts
    """
    rows = read_record_file(file)
    with open_session() as session, _ImportProgress(file, enabled=not json_output) as advance:
        report = import_records(session, org, advance(rows), default_module=module)
    if json_output:
        print_json(
            {
                "created": report.created,
                "updated": report.updated,
                "errors": [{"line": e.line, "message": e.message} for e in report.errors],
            }
        )
    else:
        _print_report(file, org, report)
    if report.errors:
        raise typer.Exit(EXIT_ROWS_FAILED)


class _ImportProgress:
    """A progress bar on stderr, by line of the file, when stderr is a terminal."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.progress = Progress(
            TextColumn("loading {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not (enabled and err_console.is_terminal),
        )

    def __enter__(self) -> _ImportProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.__exit__(*exc_info)  # type: ignore[arg-type]

    def __call__(self, rows: Iterable[SourceRow]) -> Iterator[SourceRow]:
        if self.progress.disable:
            yield from rows
            return
        task = self.progress.add_task(escape(self.path.name), total=_count_lines(self.path))
        for count, (line, row) in enumerate(rows):
            if count % 256 == 0:
                self.progress.update(task, completed=line)
            yield line, row


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _print_report(path: Path, org: int, report: ImportReport) -> None:
    print_import_summary(
        f"{escape(str(path))} -> org {org}: [bold]{report.created}[/] created, "
        f"[bold]{report.updated}[/] updated",
        report.errors,
    )
