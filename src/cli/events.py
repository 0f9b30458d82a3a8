"""``portalflow events``: emit the CRM's events (for scripting and the demo), one per command.

Each command records the event (once per org and event id), then queues its actor. With
the embedded broker a worker runs inside the command until the event is handled and the
messages it wrote are sent; with Redis the command only queues it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from dramatiq.errors import QueueJoinTimeout

from portalflow.models import CrmEventKind, CrmEventStatus
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.users import lead_conversion
from portalflow.workers import actors, address_actors, runtime, submit
from portalflow.workers.embedded import embedded_worker

from .common import EXIT_ROWS_FAILED, console, new_app, print_json, settings

app = new_app("Emit CRM events: a record's email or phone changed, a lead converted.")

EMBEDDED_TIMEOUT_MS = 300_000
EVENT_ID_HELP = "The CRM's event id: the same id twice is one event. Default: a fresh UUID."
JSON_HELP = "Print the event as JSON."


@app.command("email-changed")
def email_changed(
    org: Annotated[int, typer.Option(help="Org id.")],
    record: Annotated[str, typer.Option(help="CRM id of the record whose email changed.")],
    email: Annotated[str, typer.Option(help="The record's new email address.")],
    event_id: Annotated[str | None, typer.Option("--event-id", help=EVENT_ID_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A record's email changed: confirmed users confirm the new address, invited users are
    invited again at it, deactivated users confirm it when activated.

    Example: `portalflow events email-changed --org 1 --record C-100 --email new@example.org`
    """
    emit_event(
        org,
        CrmEventKind.EMAIL_CHANGED,
        event_id,
        {"record_id": record, "email": email},
        as_json=as_json,
    )


@app.command("phone-changed")
def phone_changed(
    org: Annotated[int, typer.Option(help="Org id.")],
    record: Annotated[str, typer.Option(help="CRM id of the record whose phone changed.")],
    phone: Annotated[str, typer.Option(help="The record's new (Indian mobile) number.")],
    event_id: Annotated[str | None, typer.Option("--event-id", help=EVENT_ID_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A record's phone changed: users of phone-preference types are invited again by SMS.

    Example: `portalflow events phone-changed --org 1 --record V-7 --phone "+91 98765 43210"`
    """
    emit_event(
        org,
        CrmEventKind.PHONE_CHANGED,
        event_id,
        {"record_id": record, "phone": phone},
        as_json=as_json,
    )


def emit_event(
    org: int,
    kind: CrmEventKind,
    event_id: str | None,
    payload: dict[str, Any],
    *,
    as_json: bool = False,
    send: Callable[[int], Any] | None = None,
    queues: Sequence[str] | None = None,
) -> None:
    """Record an event, queue it with ``send`` (default: the address-change actor), and
    with the embedded broker wait until ``queues`` are drained; then print the event."""
    config = settings()
    send = send or address_actors.handle_crm_event.send
    queues = queues or (address_actors.CRM_EVENTS_QUEUE, actors.INVITATIONS_QUEUE)
    key = event_id or str(uuid.uuid4())
    if event_id is None and not as_json:
        console.print(f"Event id: [bold]{key}[/]")
    current = runtime.configure(config)
    # A repeat is queued again too: its handler does nothing twice, and a first delivery
    # whose message was lost goes on now.
    request = submit.crm_event(org, kind, key, payload, send=send, send_repeats=True)
    if config.embedded_broker:
        with embedded_worker() as broker:
            with current.session() as session:
                recorded = submit.submit(session, request)
            try:
                for queue in queues:  # each actor's messages are queued before it is acked
                    broker.join(queue, timeout=EMBEDDED_TIMEOUT_MS, fail_fast=False)
            except QueueJoinTimeout:
                pass  # reported below as still received
    else:
        with current.session() as session:
            recorded = submit.submit(session, request)
    row_id = recorded.event_id
    if not recorded.created and not as_json:
        console.print(f"Event {key} was received before (event {row_id}); not applied again.")
    with current.session() as session:
        event = crm_events.get_event(session, row_id)
        result = crm_events.summary(event)
    print_event(result, as_json=as_json)
    if event.status == CrmEventStatus.FAILED:
        raise typer.Exit(EXIT_ROWS_FAILED)


def print_event(result: dict[str, Any], *, as_json: bool = False) -> None:
    if as_json:
        print_json(result)
        return
    status = result["status"]
    colour = {"processed": "green", "failed": "red"}.get(status, "yellow")
    line = f"CRM event [bold]{result['id']}[/] ({result['kind']}): [{colour}]{status}[/]"
    if result["result_code"]:
        line += f" [red]{result['result_code']}[/]"
    console.print(line)
    if result["detail"]:
        console.print(result["detail"], markup=False, highlight=False)
    if status == CrmEventStatus.RECEIVED.value:
        console.print("Queued; a worker applies it (run `portalflow worker`).")


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
    payload = lead_conversion.lead_payload(lead, contact, user_type or [])
    emit_event(org, CrmEventKind.LEAD_CONVERTED, event_id, payload, as_json=as_json)


app.command("lead-converted")(lead_converted)
