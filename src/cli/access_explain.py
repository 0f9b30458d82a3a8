"""``portalflow access explain``: why a record is or is not visible to a portal user."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.pipelines.access import explain

from .common import JsonFlag, console, open_session, print_json


def explain_command(
    user: Annotated[int, typer.Option("--user", help="The portal user id.")],
    module: Annotated[str, typer.Option("--module", help="The CRM module, e.g. Quotes.")],
    record: Annotated[str, typer.Option("--record", help="The record's CRM id.")],
    as_json: JsonFlag = False,
) -> None:
    """Say whether a record is visible to a portal user, which rule decided and why.

    Each condition of the module's rule is shown with whether it held, the record's value
    and the user's own value it was compared with.

    Example: `portalflow access explain --user 12 --module Quotes --record Q-1001`
    """
    with open_session() as session:
        answer = explain.explain(session, user, module, record)
    if as_json:
        print_json(answer.as_dict())
        return
    colour = "green" if answer.visible else "red"
    console.print(f"[bold {colour}]{escape(answer.summary)}[/]", highlight=False, soft_wrap=True)
    console.print(f"decided by: {escape(answer.decided_by)}", highlight=False)
    if answer.permission_set:
        console.print(f"permission set: {escape(answer.permission_set)}", highlight=False)
    if answer.steps:
        table = Table(title="conditions")
        for column in ("where", "condition", "held", "record", "user's"):
            table.add_column(column, overflow="fold")
        for step in answer.steps:
            table.add_row(
                step.path,
                escape(step.condition),
                "yes" if step.matched else "no",
                escape(repr(step.record_value)),
                escape(repr(step.user_value)) if step.user_value is not None else "",
            )
        console.print(table)
    if answer.permissions:
        allowed = ", ".join(a for a, on in answer.permissions.items() if on) or "view only"
        console.print(f"on this record: {allowed}", highlight=False)
