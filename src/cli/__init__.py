"""The ``portalflow`` command line: thin commands that call the pipelines.

Each command module owns a ``typer.Typer`` (or plain functions); registering one is one
import and one ``app.add_typer(...)`` (or ``app.command(...)``) line below. Errors a user
can fix are turned into ``error: ...`` and exit code 2 once, by ``PortalflowGroup``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from portalflow import __version__

from . import (
    accept,
    access,
    api_keys,
    bulk_runs,
    db,
    delivery,
    demo,
    events,
    failures,
    healthcheck,
    invite,
    licences,
    outcomes,
    queues,
    records,
    scheduler,
    serve,
    sessions,
    setup,
    sms_templates,
    templates,
    user_types,
    users,
    webhooks,
    worker,
)
from .common import PortalflowGroup, console

HELP = """\
**portalflow** runs the life of a CRM's portal users: invitations, failures, expiry
and licences, as queued work that workers carry out against one database.

Everything is configured by `PORTALFLOW_*` environment variables, for example
`PORTALFLOW_DATABASE_URL` (default: a SQLite file under `./var`), `PORTALFLOW_BROKER_URL`
(default: an in-process broker) and `PORTALFLOW_EMAIL_CHANNEL` (`outbox`, `smtp` or `ses`).

Start with `portalflow db upgrade`, then `portalflow orgs create`.
"""

app = typer.Typer(
    name="portalflow",
    help=HELP,
    cls=PortalflowGroup,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"portalflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    pass


app.add_typer(db.app, name="db")
app.add_typer(setup.orgs_app, name="orgs")
app.add_typer(user_types.user_types_app, name="user-types")
app.add_typer(setup.crm_users_app, name="crm-users")
app.add_typer(records.app, name="records")
app.add_typer(bulk_runs.app, name="bulk-runs")
app.add_typer(templates.app, name="templates")
app.add_typer(sms_templates.app, name="sms-templates")
app.add_typer(users.app, name="users")
app.add_typer(delivery.suppressions_app, name="suppressions")
app.add_typer(delivery.channels_app, name="channels")
app.add_typer(events.app, name="events")
app.add_typer(licences.app, name="licences")
# The group's old spelling, kept working (hidden) for one release.
app.add_typer(licences.app, name="licenses", hidden=True)
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(sessions.app, name="sessions")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(access.app, name="access")
app.command("invite")(invite.invite)
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("scheduler")(scheduler.scheduler)
app.command("failures")(failures.failures)
app.command("outcomes")(outcomes.outcomes)
app.command("queues")(queues.queues)
app.command("healthcheck")(healthcheck.healthcheck)
app.command("accept")(accept.accept)
app.command("confirm-email")(accept.confirm_email)
app.add_typer(accept.sweep_app, name="sweep")


def main() -> None:
    """Entry point of the ``portalflow`` console script."""
    app(prog_name="portalflow")


__all__ = ["app", "main"]
