"""``portalflow sessions``: see a portal user's sign-in sessions and end them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.pipelines.signin import admin

from .common import console, new_app, open_session, print_json

app = new_app(
    "See a portal user's sign-in sessions (when, how, from where) and end them: the user "
    "must sign in again."
)

OrgId = Annotated[int, typer.Option("--org", help="Org id.")]
UserId = Annotated[
    int, typer.Option("--user", help="Portal user id (see `portalflow users list`).")
]
Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@app.command("list")
def list_sessions(
    org: OrgId,
    user: UserId,
    include_ended: Annotated[
        bool, typer.Option("--all", help="Also the ended ones (logged out or revoked).")
    ] = False,
    as_json: Json = False,
) -> None:
    """List a portal user's sessions, newest first: live or expired (with --all, ended
    too, with why: logout, deactivated, removed, transferred, login_suspended,
    address_changed, password_reset, ended_by_admin). Tokens are never shown: only
    their hashes are stored.

    Example: `portalflow sessions list --org 1 --user 7 --all`
    """
    with open_session() as session:
        rows = admin.list_sessions(session, org, user, include_ended=include_ended)
    if as_json:
        print_json(rows)
        return
    table = Table(
        "id", "state", "method", "client", "signed in", "last seen", "expires", "ended",
        title=f"Sessions of portal user {user}",
    )  # fmt: skip
    for row in rows:
        ended = f"{row['ended_at']} ({row['end_reason']})" if row["ended_at"] else ""
        table.add_row(
            str(row["id"]), row["state"], row["method"], escape(row["client_ip"] or ""),
            row["created_at"], row["last_seen_at"] or "", row["expires_at"], ended,
        )  # fmt: skip
    console.print(table if rows else f"Portal user {user} has no session.")


@app.command("end")
def end_sessions(
    org: OrgId,
    user: UserId,
    session_ids: Annotated[
        list[int] | None,
        typer.Option("--session", help="Only this session id; repeatable. Default: all."),
    ] = None,
    as_json: Json = False,
) -> None:
    """End a portal user's live sessions (all of them, or those given with --session):
    the user is signed out everywhere and must sign in again. Ending what already ended
    does nothing.

    Example: `portalflow sessions end --org 1 --user 7`
    """
    with open_session() as session:
        ended = admin.end_sessions(session, org, user, session_ids or [])
    if as_json:
        print_json({"portal_user_id": user, "ended": ended})
        return
    if ended:
        ids = ", ".join(str(session_id) for session_id in ended)
        console.print(f"Ended {len(ended)} session(s) of portal user {user}: {ids}.")
    else:
        console.print(f"Portal user {user} had no live session to end.")
