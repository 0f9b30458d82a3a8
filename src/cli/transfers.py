"""Moving portal users between types from the command line.

A plain command function, registered by the root app: ``transfer`` as ``portalflow users
transfer``. The user-type deletion commands live with the other user-type commands in
``user_types.py`` and share :func:`run_transfer_and_delete` from here. ``portalflow events
lead-converted`` is a CRM event, so it lives with the other events in ``events.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import lifecycle, transfer_and_delete, transfers
from portalflow.pipelines.users.lifecycle import UserFilter

from .common import EXIT_ROWS_FAILED, console, open_session, print_json

ToUserType = Annotated[
    int,
    typer.Option("--to-user-type", "--to", help="The user type id to move the users to (or --to)."),
]
Users = Annotated[
    list[int] | None, typer.Option("--user", "-u", help="A portal user id; repeatable.")
]
Filter = Annotated[
    UserFilter | None,
    typer.Option("--filter", help="Instead of --user: every user of --user-type it shows."),
]
FromType = Annotated[
    int | None,
    typer.Option(
        "--user-type", "--from-type", help="The user type --filter applies to (or --from-type)."
    ),
]


def transfer(
    org: Annotated[int, typer.Option(help="Org id.")],
    to: ToUserType,
    user: Users = None,
    user_filter: Filter = None,
    from_type: FromType = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Move portal users to another user type, keeping their status and confirmation.

    Only between types with the same invitation preference (else nobody moves); invited and
    removed users are refused one by one; the target's licences must suffice.

    Example: `portalflow users transfer --org 1 --to-user-type 3 --user 12 --user 13`, or
    `portalflow users transfer --org 1 --to-user-type 3 --user-type 2 --filter confirmed`
    """
    if user and (user_filter is not None or from_type is not None):
        raise InvalidInput("give --user ids, or --user-type with --filter, not both")
    if not user and from_type is None:
        raise InvalidInput("give --user ids, or --user-type (with --filter, default all)")
    with open_session() as session:
        ids = lifecycle.selected_users(session, org, user, from_type, user_filter)
        result = transfers.transfer_users(session, org, ids, to)
    _print_transfer(to, result, as_json)
    if result.refused:
        raise typer.Exit(EXIT_ROWS_FAILED)


def _print_transfer(to: int, result: transfers.TransferResult, as_json: bool) -> None:
    """Who moved, and who was refused with the refusal's code and why."""
    summary = {
        "to_user_type_id": to,
        "moved": result.moved,
        "refused": [
            {"user_id": uid, "code": why.code.value, "reason": why.detail}
            for uid, why in result.refused.items()
        ],
    }
    if as_json:
        print_json(summary)
    else:
        colour = "red" if result.refused else "green"
        console.print(
            f"[bold green]{len(result.moved)}[/] user(s) moved to user type {to}, "
            f"[bold {colour}]{len(result.refused)}[/] refused"
        )
        if result.refused:
            table = Table(title="Not moved")
            table.add_column("user", justify="right")
            table.add_column("code")
            table.add_column("why", overflow="fold")
            for uid, why in result.refused.items():
                table.add_row(str(uid), why.code.value, escape(why.detail))
            console.print(table)


def run_transfer_and_delete(
    org: int, user_type: int, transfer_to: int, *, batch_size: int = 500, progress: bool = True
) -> dict[str, Any]:
    """Start (or resume) a transfer and delete and run it to the end in this process,
    printing (with ``progress``) a line per committed batch."""
    with open_session() as session:
        source = orgs.get_user_type(session, org, user_type)
        name = source.name
        transfer_and_delete.start_transfer_and_delete(session, org, user_type, transfer_to)
        session.commit()
        total = transfer_and_delete.users_left(session, user_type)
        if progress:
            console.print(f"Deleting user type {escape(name)!r}: moving {total} user(s)")
        while not transfer_and_delete.continue_transfer_and_delete(
            session, user_type, batch_size=batch_size
        ):
            if progress:
                left = transfer_and_delete.users_left(session, user_type)
                console.print(f"  {total - left} of {total} user(s) moved")
    if progress:
        console.print(
            f"[green]User type {escape(name)!r} deleted[/]; its {total} user(s) are now of "
            f"user type {transfer_to}"
        )
    return {"deleted_user_type_id": user_type, "transfer_to_id": transfer_to, "moved": total}
