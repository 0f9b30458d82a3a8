"""``portalflow accept``, ``portalflow confirm-email`` and ``portalflow sweep expired``.

What a portal user's link does, for scripting and the demo, and the expiry sweep run by
hand. The password is read from a file or stdin, never from the command line (argv is
visible to every user of the machine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from portalflow.models import PortalUser, utcnow
from portalflow.pipelines.invitations import acceptance, expiry

from .common import console, err_console, fail, new_app, open_session, print_json

sweep_app = new_app("Run a maintenance sweep now, in this process.")


def _read_password(source: str) -> str:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the password from {source}: {exc}")
    return text.rstrip("\r\n")


def _report(result: dict[str, object], verb: str, as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        console.print(
            f"{verb}: portal user {result['portal_user_id']} is now [bold]{result['status']}[/]"
        )


def _result(user: PortalUser) -> dict[str, object]:
    return {"portal_user_id": user.id, "status": user.status.value}


def _refused(exc: acceptance.AcceptanceError) -> NoReturn:
    fail(f"{exc} ({exc.problem.value})")


TOKEN_OPTION_HELP = "The token, as an option: for a token that starts with '-'."


def _token(argument: str | None, option: str | None) -> str:
    """The one token given, as the argument or as ``--token`` (whose value may start with -)."""
    if (argument is None) == (option is None):
        fail("give the token once: as the argument, or as --token (when it starts with -)")
    return argument if argument is not None else option  # type: ignore[return-value]


def accept(
    password_file: Annotated[
        str,
        typer.Option(
            "--password-file",
            help="File holding the new password (its trailing newline is dropped); - for stdin.",
            show_default=False,
        ),
    ],
    token_argument: Annotated[
        str | None,
        typer.Argument(
            metavar="TOKEN",
            help="The token from the invitation link (one starting with - goes after --, "
            "or as --token).",
            show_default=False,
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="Language code; default: the inviting CRM user's.")
    ] = None,
    time_zone: Annotated[
        str | None, typer.Option(help="IANA time zone; default: the inviting CRM user's.")
    ] = None,
    time_format: Annotated[
        str | None, typer.Option(help="12h or 24h; default: the inviting CRM user's.")
    ] = None,
    country: Annotated[
        str | None,
        typer.Option(help="ISO 3166-1 alpha-2 code; default: the inviting CRM user's or org's."),
    ] = None,
    token_option: Annotated[
        str | None, typer.Option("--token", help=TOKEN_OPTION_HELP, show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Accept an invitation: set the password and confirm the portal user.

    Example: `portalflow accept 3q2-Xk... --password-file pw.txt --time-zone Asia/Kolkata`;
    a token that starts with a dash: `portalflow accept --token -Xk3... --password-file pw.txt`
    """
    token = _token(token_argument, token_option)
    password = _read_password(password_file)
    try:
        with open_session() as session:
            user = acceptance.accept_invitation(
                session,
                token,
                password=password,
                language=language,
                time_zone=time_zone,
                time_format=time_format,
                country=country,
            )
            result = _result(user)
    except acceptance.AcceptanceError as exc:
        _refused(exc)
    _report(result, "accepted", as_json)


def confirm_email(
    token_argument: Annotated[
        str | None,
        typer.Argument(
            metavar="TOKEN",
            help="The token from the confirm-email link (one starting with - as --token).",
            show_default=False,
        ),
    ] = None,
    token_option: Annotated[
        str | None, typer.Option("--token", help=TOKEN_OPTION_HELP, show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Confirm a changed email address: the user's access comes back, password unchanged.

    Example: `portalflow confirm-email 3q2-Xk...` (or `--token -Xk3...`)
    """
    token = _token(token_argument, token_option)
    try:
        with open_session() as session:
            result = _result(acceptance.confirm_email(session, token))
    except acceptance.AcceptanceError as exc:
        _refused(exc)
    _report(result, "confirmed", as_json)


@sweep_app.command("expired")
def sweep_expired(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Invitations per transaction.")
    ] = expiry.DEFAULT_BATCH_SIZE,
    whole_history: Annotated[
        bool,
        typer.Option(
            "--whole-history",
            help="Look at every invitation, not only from a day before the last sweep "
            "(after a restore, or rows written with an expiry long past).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Mark every sent invitation past its 7 days `expired` now (what the worker's sweep does).

    Example: `portalflow sweep expired --json`
    """
    options = {"batch_size": batch_size, "whole_history": whole_history}
    with open_session() as session:
        if as_json:
            swept = expiry.expire_invitations(session, utcnow(), **options)
        else:
            with err_console.status("expiring invitations past their 7 days ..."):
                swept = expiry.expire_invitations(session, utcnow(), **options)
    if as_json:
        print_json({"expired": swept.expired, "batches": swept.batches})
        return
    noun = "invitation" if swept.expired == 1 else "invitations"
    console.print(f"expired [bold]{swept.expired}[/] {noun} in {swept.batches} batch(es)")
