"""Moving portal users between types from the command line.

Plain command functions, registered by the root app: ``transfer`` as ``portalflow users
transfer`` and ``lead_converted`` as ``portalflow events lead-converted``. The user-type
deletion commands live with the other user-type commands in ``user_types.py`` and share
:func:`run_transfer_and_delete` from here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import CrmEventKind
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import lead_conversion, lifecycle, transfer_and_delete, transfers
from portalflow.pipelines.users.lifecycle import UserFilter

from .common import EXIT_ROWS_FAILED, console, open_session, print_json

EVENT_ID_HELP = "The CRM's event id: the same id twice is one event. Default: a fresh UUID."


def transfer(
    org: Annotated[int, typer.Option(help="Org id.")],
    to: Annotated[
        int,
        typer.Option(
            "--to-user-type", "--to", help="The user type id to move the users to (or --to)."
        ),
    ],
    user: Annotated[
        list[int] | None, typer.Option("--user", "-u", help="A portal user id; repeatable.")
    ] = None,
    user_filter: Annotated[
        UserFilter | None,
        typer.Option("--filter", help="Instead of --user: every user of --user-type it shows."),
    ] = None,
    from_type: Annotated[
        int | None,
        typer.Option(
            "--user-type", "--from-type", help="The user type --filter applies to (or --from-type)."
        ),
    ] = None,
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
        if user:
            ids = list(user)
        else:
            assert from_type is not None
            orgs.get_user_type(session, org, from_type)
            ids = lifecycle.user_ids(session, org, user_filter or UserFilter.ALL, from_type)
        result = transfers.transfer_users(session, org, ids, to)
    summary = {
        "to_user_type_id": to,
        "moved": result.moved,
        "refused": [{"user_id": uid, "reason": why} for uid, why in result.refused.items()],
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
            table.add_column("why", overflow="fold")
            for uid, why in result.refused.items():
                table.add_row(str(uid), escape(why))
            console.print(table)
    if result.refused:
        raise typer.Exit(EXIT_ROWS_FAILED)


def lead_converted(
    org: Annotated[int, typer.Option(help="Org id.")],
    lead: Annotated[list[str], typer.Option("--lead", help="CRM id of a converted lead.")],
    contact: Annotated[
        list[str], typer.Option("--contact", help="CRM id of its new contact (same order).")
    ],
    user_type: Annotated[
        list[int] | None,
        typer.Option(
            "--user-type",
            help="The Contacts user type chosen: once for every lead, or once per lead.",
        ),
    ] = None,
    event_id: Annotated[str | None, typer.Option("--event-id", help=EVENT_ID_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the event as JSON.")] = False,
) -> None:
    """Leads were converted to contacts: their portal users move to a Contacts user type.

    With several Contacts types of the lead type's invitation preference and no
    `--user-type`, the org's conversion default is used, or the event fails with
    `user_type_choice_required` (see `portalflow user-types set-conversion-default`).

    Example: `portalflow events lead-converted --org 1 --lead L-1 --contact C-1
    --lead L-2 --contact C-2 --user-type 4`
    """
    from .events import emit_event

    payload = lead_conversion.lead_payload(lead, contact, user_type or [])
    emit_event(org, CrmEventKind.LEAD_CONVERTED, event_id, payload, as_json=as_json)


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
