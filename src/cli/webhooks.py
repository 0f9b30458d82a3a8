"""``portalflow webhooks``: the org's CRM endpoints, their secrets and their deliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import WebhookDeliveryStatus
from portalflow.models.enums import WEBHOOK_EVENT_DESCRIPTIONS
from portalflow.pipelines.crm_webhooks import delivery, endpoints
from portalflow.workers import submit

from .common import JsonFlag, console, new_app, open_session, print_json, settings

app = new_app(
    "Signed webhooks that tell the CRM what happened: endpoints (URL, secret, event types),"
    " their deliveries, and redelivering the dead ones. See the README's webhooks section."
)

OrgId = Annotated[int, typer.Option("--org", help="The org's id (see `portalflow orgs list`).")]
EndpointId = Annotated[int, typer.Argument(help="The endpoint's id (see `webhooks list`).")]
Events = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        "-e",
        help="An event type the endpoint wants (repeat it); none: every type."
        " See `portalflow webhooks events`.",
    ),
]


@app.command("events")
def events(as_json: JsonFlag = False) -> None:
    """List the event types an endpoint can subscribe to, and when each is sent."""
    catalogue = {kind.value: text for kind, text in WEBHOOK_EVENT_DESCRIPTIONS.items()}
    if as_json:
        print_json(catalogue)
        return
    table = Table(title="Webhook event types")
    table.add_column("type")
    table.add_column("sent when", overflow="fold")
    for kind, text in catalogue.items():
        table.add_row(kind, text)
    console.print(table)


@app.command("create")
def create(
    org: OrgId,
    url: Annotated[str, typer.Option(help="Where to POST: an http(s) URL of the CRM.")],
    event: Events = None,
    description: Annotated[str | None, typer.Option(help="A note for admins.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an endpoint and print its signing secret, once: it cannot be shown again.

    The URL must be http(s), without credentials, and resolve to a public address (or one
    inside `PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS`).

    Example: `portalflow webhooks create --org 1 --url https://crm.example.com/hooks
    -e invitation.failed -e invitation.accepted`
    """
    config = settings()
    with open_session(config) as session:
        created = endpoints.create_endpoint(session, config, org, url, event, description)
        shown = endpoints.describe(session, created.endpoint)
    _print_secret(shown, created.secret, as_json, "created")


@app.command("list")
def list_(org: OrgId, as_json: JsonFlag = False) -> None:
    """List the org's endpoints with their deliveries per status (never the secrets)."""
    with open_session() as session:
        shown = [endpoints.describe(session, e) for e in endpoints.list_endpoints(session, org)]
    if as_json:
        print_json(shown)
        return
    table = Table(title=f"Webhook endpoints of org {org}")
    for column in ("id", "url", "events", "enabled", "pending", "delivered", "dead"):
        table.add_column(column, overflow="fold")
    for row in shown:
        counts = row["deliveries"]
        table.add_row(
            str(row["id"]),
            escape(row["url"]),
            ", ".join(row["event_types"]),
            "yes" if row["enabled"] else "no",
            str(counts["pending"] + counts["sending"]),
            str(counts["delivered"]),
            str(counts["dead"]),
        )
    console.print(table)


@app.command("update")
def update(
    endpoint_id: EndpointId,
    org: OrgId,
    url: Annotated[str | None, typer.Option(help="A new URL (checked as at create).")] = None,
    event: Events = None,
    all_events: Annotated[
        bool, typer.Option("--all-events", help="Want every event type from now on.")
    ] = False,
    description: Annotated[str | None, typer.Option(help="A new note.")] = None,
    enabled: Annotated[
        bool | None,
        typer.Option(
            "--enable/--disable",
            help="Disabled, an endpoint gets nothing and keeps its pending deliveries;"
            " enabled again, they go out in order.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an endpoint's URL, event types, note or whether it is enabled."""
    if all_events and event:
        raise typer.BadParameter("give --event or --all-events, not both")
    config = settings()
    types = [] if all_events else event
    with open_session(config) as session:
        endpoint = endpoints.update_endpoint(
            session,
            config,
            org,
            endpoint_id,
            url=url,
            types=types,
            description=description,
            enabled=enabled,
        )
        shown = endpoints.describe(session, endpoint)
    if as_json:
        print_json(shown)
        return
    console.print(f"Webhook endpoint {endpoint_id} updated: {escape(shown['url'])}")


@app.command("rotate-secret")
def rotate_secret(
    endpoint_id: EndpointId,
    org: OrgId,
    overlap_hours: Annotated[
        float,
        typer.Option(
            min=0,
            max=endpoints.MAX_OVERLAP.days * 24,
            help="How long the current secret keeps signing too (0: stops now).",
        ),
    ] = endpoints.DEFAULT_OVERLAP.total_seconds() / 3600,
    as_json: JsonFlag = False,
) -> None:
    """Make a new signing secret and print it once; the old one signs too for the overlap.

    During the overlap each POST carries two `v1=` signatures, so the CRM can switch to the
    new secret at any moment of it.
    """
    config = settings()
    with open_session(config) as session:
        created = endpoints.rotate_secret(
            session, config, org, endpoint_id, timedelta(hours=overlap_hours)
        )
        shown = endpoints.describe(session, created.endpoint)
    _print_secret(shown, created.secret, as_json, "has a new secret")


@app.command("delete")
def delete(endpoint_id: EndpointId, org: OrgId) -> None:
    """Delete an endpoint and its deliveries (pending ones are never sent)."""
    with open_session() as session:
        endpoints.delete_endpoint(session, org, endpoint_id)
    console.print(f"Webhook endpoint {endpoint_id} of org {org} deleted.")


@app.command("deliveries")
def deliveries(
    org: OrgId,
    status: Annotated[
        WebhookDeliveryStatus | None,
        typer.Option(help="Only deliveries in this status (dead: every attempt failed)."),
    ] = None,
    endpoint: Annotated[int | None, typer.Option(help="Only this endpoint's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List the org's deliveries, newest first: status, attempts, and the last answer."""
    with open_session() as session:
        rows = [
            delivery.describe(row)
            for row in delivery.list_deliveries(
                session, org, status=status, endpoint_id=endpoint, limit=limit
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Webhook deliveries of org {org}")
    for column in ("id", "endpoint", "event", "type", "status", "attempts", "last answer"):
        table.add_column(column, overflow="fold")
    for row in rows:
        answer = row["last_failure_code"] or ("ok" if row["status"] == "delivered" else "-")
        if row["last_status_code"]:
            answer += f" ({row['last_status_code']})"
        table.add_row(
            str(row["id"]),
            str(row["endpoint_id"]),
            row["event_id"],
            row["event_type"],
            row["status"],
            str(row["attempts"]),
            escape(answer),
        )
    console.print(table)


@app.command("redeliver")
def redeliver(
    delivery_ids: Annotated[
        list[int], typer.Argument(help="Ids of dead deliveries (see `webhooks deliveries`).")
    ],
    org: OrgId,
) -> None:
    """Send dead deliveries again, with fresh attempts (same event ids)."""
    config = settings()
    with open_session(config) as session:
        ids = submit.submit(session, submit.redeliver_webhooks(org, delivery_ids))
    console.print(f"{len(ids)} webhook deliveries of org {org} queued again.")


def _print_secret(shown: dict[str, Any], secret: str, as_json: bool, what: str) -> None:
    if as_json:
        print_json({**shown, "secret": secret})
        return
    console.print(
        f"Webhook endpoint {shown['id']} {what}: {escape(shown['url'])}\n"
        "Its signing secret (shown only now; store it with the CRM's receiver):"
    )
    typer.echo(secret)
