"""Putting work on the queues, always after the rows it names are committed."""

from __future__ import annotations

from collections.abc import Iterable

from . import webhook_actors
from .actors import INVITATIONS_QUEUE, bulk_invite, dispatch_invitation, user_action_chunk

__all__ = [
    "INVITATIONS_QUEUE",
    "enqueue_action_chunks",
    "enqueue_chunks",
    "enqueue_dispatch",
    "enqueue_webhook_deliveries",
]


def enqueue_chunks(chunk_ids: Iterable[int]) -> int:
    """One bulk_invite message per chunk; returns how many were sent."""
    count = 0
    for chunk_id in chunk_ids:
        bulk_invite.send(chunk_id)
        count += 1
    return count


def enqueue_dispatch(invitation_ids: Iterable[int]) -> int:
    count = 0
    for invitation_id in invitation_ids:
        dispatch_invitation.send(invitation_id)
        count += 1
    return count


def enqueue_action_chunks(chunk_ids: Iterable[int]) -> int:
    """One user_action_chunk message per chunk of a bulk user action."""
    count = 0
    for chunk_id in chunk_ids:
        user_action_chunk.send(chunk_id)
        count += 1
    return count


def enqueue_webhook_deliveries(delivery_ids: Iterable[int]) -> int:
    """deliver_webhooks messages for outbox rows (a redelivery an admin asked for)."""
    ids = list(delivery_ids)
    webhook_actors.enqueue(ids)
    return len(ids)
