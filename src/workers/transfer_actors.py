"""Actors that move users between types: transfer-and-delete.

Lead conversion arrives as a CRM event: ``address_actors.handle_crm_event`` applies it.
"""

from __future__ import annotations

import dramatiq

from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.users.transfer_and_delete import continue_transfer_and_delete

from . import runtime
from .actors import (
    INFRASTRUCTURE_RETRIES,
    MAINTENANCE_QUEUE,
    MINUTE_MS,
    MalformedMessage,
    message_id,
)
from .broker import register


@register
@dramatiq.actor(
    queue_name=MAINTENANCE_QUEUE,
    time_limit=60 * MINUTE_MS,
    throws=(MalformedMessage, NotFound, InvalidInput),
    **INFRASTRUCTURE_RETRIES,
)
def transfer_and_delete(user_type_id: int) -> None:
    """Move every user of a type marked for deletion, then delete it (batches committed).

    A retry after a crash resumes where the last committed batch left off.
    """
    user_type_id = message_id(user_type_id, "user_type_id")
    with runtime.current().session() as session:
        continue_transfer_and_delete(session, user_type_id, max_batches=None)
