"""``portalflow suppressions`` and ``portalflow channels``: what stops invitations going out."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from portalflow.models import Channel
from portalflow.pipelines.delivery import outcomes, pauses
from portalflow.pipelines.invitations import suppressions
from portalflow.workers import enqueue, runtime, submit
from portalflow.workers.embedded import embedded_worker

from .common import console, new_app, open_session, print_json, settings

suppressions_app = new_app(
    "The org's suppression list: addresses that bounced for good, complained or opted out."
)
channels_app = new_app("Channels paused for an org by a configuration error, and resuming them.")

OrgId = Annotated[int, typer.Option("--org", help="The org's id.")]
Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@suppressions_app.command("list")
def list_suppressions(org: OrgId, as_json: Json = False) -> None:
    """List the addresses and numbers no invitation goes to, newest first.

    Example: `portalflow suppressions list --org 1`
    """
    with open_session() as session:
        rows = [
            {
                "channel": row.channel.value,
                "address": row.address,
                "reason": row.reason,
                "meaning": outcomes.describe(row.reason),
                "since": row.created_at.isoformat(),
                "invitation_id": row.invitation_id,
            }
            for row in suppressions.active(session, org)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("channel", "address", "reason", "since", title=f"Suppressed in org {org}")
    for row in rows:
        table.add_row(row["channel"], row["address"], row["reason"], row["since"][:19])
    console.print(table if rows else "Nothing is suppressed.")


@suppressions_app.command("clear")
def clear_suppression(
    org: OrgId,
    address: Annotated[str, typer.Option(help="The email address or E.164 number.")],
    channel: Annotated[
        Channel | None, typer.Option(help="Only this channel (default: both).")
    ] = None,
) -> None:
    """Let invitations go to an address again (after the recipient asked for it).

    Example: `portalflow suppressions clear --org 1 --address sage@example.org`
    """
    with open_session() as session:
        cleared = suppressions.clear(session, org, address, channel=channel)
    console.print(f"Cleared {cleared} suppression(s) of {address}.")


@channels_app.command("paused")
def list_paused(
    org: Annotated[int | None, typer.Option("--org", help="Only this org.")] = None,
    as_json: Json = False,
) -> None:
    """List paused channels: each is an alert that an org's provider setup is broken.

    Example: `portalflow channels paused --json`
    """
    with open_session() as session:
        rows = [
            {
                "org_id": pause.org_id,
                "channel": pause.channel.value,
                "code": pause.code,
                "meaning": outcomes.describe(pause.code),
                "detail": pause.detail,
                "paused_at": pause.paused_at.isoformat(),
            }
            for pause in pauses.paused(session, org)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("org", "channel", "code", "since", "detail", title="Paused channels")
    for row in rows:
        table.add_row(
            str(row["org_id"]), row["channel"], row["code"], row["paused_at"][:19], row["detail"]
        )
    console.print(table if rows else "No channel is paused.")


@channels_app.command("resume")
def resume(
    org: OrgId,
    channel: Annotated[Channel, typer.Option(help="The channel to resume.")],
    as_json: Json = False,
) -> None:
    """Resume a paused channel once its setup is fixed; its held invitations go out.

    Example: `portalflow channels resume --org 1 --channel email`
    """
    config = settings()
    current = runtime.configure(config)
    request = submit.resume_channel(org, channel)
    if config.embedded_broker:
        with embedded_worker() as broker:
            with current.session() as session:
                held = submit.submit(session, request)
            broker.join(enqueue.INVITATIONS_QUEUE)
    else:
        with current.session() as session:
            held = submit.submit(session, request)
    if as_json:
        print_json({"org_id": org, "channel": channel.value, "queued": len(held)})
        return
    console.print(f"Resumed {channel.value} for org {org}; {len(held)} held invitation(s) queued.")
