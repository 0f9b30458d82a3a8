"""``portalflow users``: list a user type's portal users and act on them in bulk."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import BulkAction
from portalflow.pipelines.ops import reports
from portalflow.pipelines.users import user_history
from portalflow.pipelines.users.lifecycle import UserFilter
from portalflow.workers import runtime, submit

from . import transfers
from .common import EXIT_ROWS_FAILED, console, new_app, open_session, print_json, settings
from .waiting import run_and_wait

app = new_app(
    "List and show portal users; reinvite, deactivate, activate, remove or transfer them."
)

OrgId = Annotated[int, typer.Option("--org", help="Org id.")]
UserTypeId = Annotated[int, typer.Option("--user-type", help="User type id.")]
Filter = Annotated[
    UserFilter,
    typer.Option("--status", help="The Users tab filter (ignored when --user is given)."),
]
Users = Annotated[list[int] | None, typer.Option("--user", help="A portal user id; repeatable.")]
ActorId = Annotated[
    int, typer.Option("--crm-user", "--actor", help="Id of the CRM user acting (or --actor).")
]
Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@app.command("list")
def list_users(
    org: OrgId,
    user_type: Annotated[int | None, typer.Option("--user-type", help="Only this type.")] = None,
    status: Filter = UserFilter.ALL,
    as_json: Json = False,
) -> None:
    """List portal users by the spec's filters: all, active, confirmed, unconfirmed
    (not_accepted, login_suspended), deactivated; each with its record's CRM id and name.

    Example: `portalflow users list --org 1 --status unconfirmed`
    """
    with open_session() as session:
        rows = user_history.list_users(session, org, status, user_type)
    if as_json:
        print_json(rows)
        return
    table = Table(
        "id", "CRM id", "name", "type", "status", "email", "phone",
        title=f"Portal users ({status.value})",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            str(row["id"]), escape(row["crm_id"]), escape(row["name"] or ""),
            str(row["user_type_id"]), row["status"], escape(row["email"] or ""),
            escape(row["phone"] or ""),
        )  # fmt: skip
    console.print(table if rows else "No portal user matches.")


@app.command("show")
def show_user(
    user_id: Annotated[int, typer.Argument(help="Portal user id (see `portalflow users list`).")],
    org: Annotated[int | None, typer.Option(help="Refuse a user of any other org.")] = None,
    as_json: Json = False,
) -> None:
    """Show a portal user: its record, whether it holds a licence seat, and every invitation
    attempt (time, channel, provider message id, outcome and code).

    Example: `portalflow users show 7 --org 1`
    """
    with open_session() as session:
        shown = user_history.user_history(session, user_id, org_id=org)
    if as_json:
        print_json(shown)
        return
    seat = "holds a licence seat" if shown["holds_licence_seat"] else "holds no licence seat"
    console.print(
        f"Portal user [bold]{shown['id']}[/]: record {escape(shown['crm_id'])} "
        f"({escape(shown['name'] or 'no name')}), {escape(shown['user_type'])} "
        f"(type {shown['user_type_id']}), [bold]{shown['status']}[/], {seat}.",
        highlight=False,
    )
    if not shown["invitations"]:
        console.print("No invitation attempts.")
        return
    table = Table(
        "invitation", "created (UTC)", "sent (UTC)", "kind", "channel", "provider id",
        "status", "outcome", "code", "detail", title="Invitation attempts",
    )  # fmt: skip
    for row in shown["invitations"]:
        table.add_row(
            str(row["id"]), _moment(row["created_at"]), _moment(row["sent_at"]), row["kind"],
            row["channel"], escape(row["provider_message_id"] or ""), row["status"],
            row["outcome"] or "", row["failure_code"] or row["outcome_code"] or "",
            escape(row["failure_detail"] or ""),
        )  # fmt: skip
    console.print(table)


def _moment(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


def _act(
    action: BulkAction,
    org: int,
    user_type: int,
    actor: int,
    users: list[int] | None,
    status: UserFilter,
    language: str,
    as_json: bool,
) -> None:
    config = settings()
    current = runtime.configure(config)
    request = submit.user_action(
        org_id=org,
        user_type_id=user_type,
        actor_id=actor,
        action=action,
        user_ids=users or None,
        user_filter=status,
        language=language,
        chunk_size=config.bulk_chunk_size,
    )

    def start() -> int:
        with current.session() as session:
            return submit.submit(session, request).run_id

    run_id, _ = run_and_wait(config, current.session_factory, start)
    with current.session() as session:
        report = reports.bulk_run_report(session, run_id, limit=50)
    if as_json:
        print_json(report)
    else:
        console.print(
            f"{action.value}: [green]{report['sent']} done[/], [red]{report['failed']} refused[/]"
            f" of {report['requested']} (bulk run {report['id']})."
        )
        for refusal in report["refused_users"]:
            code = f"{refusal['code']}: " if refusal["code"] else ""
            console.print(f"  user {refusal['portal_user_id']}: {code}{refusal['detail']}")
    if report["failed"]:
        raise typer.Exit(EXIT_ROWS_FAILED)


def _command(action: BulkAction, summary: str) -> None:
    def command(
        org: OrgId,
        user_type: UserTypeId,
        actor: ActorId,
        user: Users = None,
        status: Filter = UserFilter.ALL,
        language: Annotated[str, typer.Option(help="Email language (reinvite).")] = "en",
        as_json: Json = False,
    ) -> None:
        _act(action, org, user_type, actor, user, status, language, as_json)

    command.__doc__ = (
        f"{summary}\n\nBy id (`--user`, repeatable) or by filter (`--status`); users the "
        f"action is not allowed for are refused and listed.\n\nExample: `portalflow users "
        f"{action.value} --org 1 --user-type 1 --crm-user 1 --status "
        f"{'unconfirmed' if action == BulkAction.REINVITE else 'all'}`"
    )
    app.command(action.value)(command)


_command(
    BulkAction.REINVITE,
    "Reinvite unconfirmed users: not accepted -> accept email; login suspended -> confirm email.",
)
_command(BulkAction.DEACTIVATE, "Deactivate active users (they stop holding a licence).")
_command(BulkAction.ACTIVATE, "Activate deactivated users (a held email change is confirmed).")
_command(BulkAction.REMOVE, "Remove users: access revoked; the record can be invited again.")

app.command("transfer")(transfers.transfer)
