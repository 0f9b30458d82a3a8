"""``portalflow outcomes``: every provider answer we know and what it becomes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from portalflow.pipelines.delivery.outcome_table import outcome_table, outcome_table_markdown

from .common import console


def outcomes(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown table the README carries.")
    ] = False,
) -> None:
    """Show how each provider answer is classified: outcome class, stable code, meaning.

    Example: `portalflow outcomes --markdown`
    """
    if markdown:
        typer.echo(outcome_table_markdown(), nl=False)
        return
    table = Table("provider", "answer", "outcome", "code", "meaning", title="Provider outcomes")
    for row in outcome_table():
        table.add_row(*row)
    console.print(table)
