"""The recovery actor: what a lost message or a dead worker left behind goes back on the queues.

It re-enqueues work of every kind, so it sits above the actor modules it sends to.
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq

from portalflow.models import utcnow
from portalflow.pipelines.ops import recovery

from . import runtime
from .actors import (
    MAINTENANCE_QUEUE,
    MINUTE_MS,
    RECOVERY_BACKOFF,
    bulk_invite,
    dispatch_invitation,
    process_provider_event,
    retry_infrastructure_errors,
    user_action_chunk,
)
from .address_actors import handle_crm_event
from .broker import register


@register
@dramatiq.actor(
    queue_name=MAINTENANCE_QUEUE,
    time_limit=5 * MINUTE_MS,
    retry_when=retry_infrastructure_errors,
    **RECOVERY_BACKOFF,
)
def recover_stuck_work() -> None:
    """Give expired claims back to the queue and re-enqueue work whose message was lost.

    Two passes at once (a retry meeting the next scheduled run) do no double work: lapsed
    claims are taken with ``FOR UPDATE SKIP LOCKED`` and moved by compare-and-set, and a
    re-enqueued id whose row another pass already handed on is claimed by one send only.
    """
    current = runtime.current()
    settings = current.settings
    # The SMS channel is built on the first lookup only: a pass without lost SMS receipts
    # never opens it, and a channel that cannot be built counts as one that cannot tell.
    channels = current.channels()
    try:
        with current.session() as session:
            found = recovery.recover(
                session,
                utcnow(),
                max_attempts=settings.max_send_attempts,
                # Claims carry their deadline; recovery's own lease only dates older ones.
                grace=timedelta(seconds=settings.replay_grace_seconds),
                sms_lookup=lambda to, since, matches: channels.sms.find_sent(to, since, matches),
            )
    finally:
        channels.close()
    for chunk_id in found.chunk_ids:
        bulk_invite.send(chunk_id)
    for chunk_id in found.action_chunk_ids:
        user_action_chunk.send(chunk_id)
    for invitation_id in found.invitation_ids:
        dispatch_invitation.send(invitation_id)
    for event_id in found.event_ids:
        process_provider_event.send(event_id)
    for event_id in found.crm_event_ids:
        handle_crm_event.send(event_id)
