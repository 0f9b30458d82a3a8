"""Putting work on the queues, always after the rows it names are committed."""

from __future__ import annotations

from collections.abc import Iterable

from .actors import INVITATIONS_QUEUE, bulk_invite, dispatch_invitation

__all__ = ["INVITATIONS_QUEUE", "enqueue_chunks", "enqueue_dispatch"]


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
