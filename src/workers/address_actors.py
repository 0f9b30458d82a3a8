"""Actors of address changes: CRM email and phone change events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dramatiq
from sqlalchemy.orm import Session

from portalflow.models import CrmEventKind
from portalflow.pipelines.crm import crm_events, intake
from portalflow.pipelines.errors import NotFound
from portalflow.pipelines.users import address_changes, lead_conversion

from . import actors, runtime
from .actors import INFRASTRUCTURE_RETRIES, MINUTE_MS, MalformedMessage, message_id
from .broker import CRM_EVENTS_QUEUE, register

# Event kind -> the pipeline that applies it; it flushes and returns invitation ids to send.
Handler = Callable[[Session, int, datetime | None], list[int]]
HANDLERS: dict[CrmEventKind, Handler] = {
    CrmEventKind.EMAIL_CHANGED: address_changes.handle_email_changed,
    CrmEventKind.PHONE_CHANGED: address_changes.handle_phone_changed,
    CrmEventKind.LEAD_CONVERTED: lead_conversion.apply_lead_converted,
    CrmEventKind.RECORD_UPSERTED: intake.handle_record_upserted,
    CrmEventKind.RECORD_DELETED: intake.handle_record_deleted,
    CrmEventKind.RECORD_RESTORED: intake.handle_record_restored,
}
# Event kind -> the pipeline that applies it by writing a bulk run; it returns the run's
# chunk ids, which go to the bulk-invite actor after the commit.
CHUNK_HANDLERS: dict[CrmEventKind, Handler] = {
    CrmEventKind.INVITATION_REQUESTED: intake.handle_invitation_requested,
}


class UnsupportedEvent(MalformedMessage):
    """An event of a kind this actor does not handle; retrying cannot help."""


@register
@dramatiq.actor(
    queue_name=CRM_EVENTS_QUEUE,
    time_limit=MINUTE_MS,
    throws=(MalformedMessage, NotFound),
    **INFRASTRUCTURE_RETRIES,
)
def handle_crm_event(event_id: int) -> None:
    """Apply one stored CRM event once, then send the invitations it wrote (in this actor).

    An invitation of the user being sent at this very moment raises InvitationInFlight,
    which Dramatiq retries with backoff like any infrastructure trouble.
    """
    event_id = message_id(event_id, "event_id")
    with runtime.current().session() as session:
        kind = crm_events.get_event(session, event_id).kind
        handler = HANDLERS.get(kind)
        chunk_handler = CHUNK_HANDLERS.get(kind)
        invitation_ids: list[int] = []
        chunk_ids: list[int] = []
        if handler is not None:
            invitation_ids = handler(session, event_id, None)
        elif chunk_handler is not None:
            chunk_ids = chunk_handler(session, event_id, None)
        else:
            raise UnsupportedEvent(f"CRM event {event_id} is {kind.value}; no handler for it")
    # Committed: the rows the messages name exist for whichever worker picks them up.
    for chunk_id in chunk_ids:
        actors.bulk_invite.send(chunk_id)
    # Sent here, not queued again: a confirmation email is what the CRM is waiting for.
    actors.send_now(invitation_ids)
