"""Dramatiq actors: ids in, one pipeline call, a retry decision out. No rules here."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dramatiq
from dramatiq.errors import BrokerConnectionError
from sqlalchemy.exc import InterfaceError, OperationalError

from portalflow.pipelines.delivery import after_send, dispatch, send_outcomes
from portalflow.pipelines.errors import NotFound
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.users import user_actions

from . import runtime
from .broker import register

logger = logging.getLogger(__name__)

INVITATIONS_QUEUE = "invitations"
MAINTENANCE_QUEUE = "maintenance"
EVENTS_QUEUE = "provider-events"
MINUTE_MS = 60_000
# Dramatiq's own retries cover infrastructure trouble (database or broker down); send
# failures are retried by the pipeline's backoff, not by raising.
INFRASTRUCTURE_RETRIES = {"max_retries": 8, "min_backoff": 1_000, "max_backoff": 10 * MINUTE_MS}
# A recovery pass that lost the database or the broker is tried again with backoff (about
# 1, 2, 4, 8, 16 then 30 s: at most ~2.5 min in all), inside the 5-minute schedule, whose
# next run catches up on whatever is left; any other error waits for that next run.
RECOVERY_RETRIES = 7
RECOVERY_BACKOFF = {"min_backoff": 1_000, "max_backoff": 30_000}
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, BrokerConnectionError)


def retry_infrastructure_errors(retries: int, exception: BaseException) -> bool:
    """Dramatiq's ``retry_when``: retry database or broker trouble, a bounded number of times."""
    return retries < RECOVERY_RETRIES and isinstance(exception, INFRASTRUCTURE_ERRORS)


class MalformedMessage(ValueError):
    """A message whose arguments are not what the actor takes; retrying cannot help."""


def message_id(value: object, name: str) -> int:
    """A positive integer id from a message argument, or MalformedMessage."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MalformedMessage(f"{name} must be a positive integer, got {value!r}")
    return value


@register
@dramatiq.actor(
    queue_name=INVITATIONS_QUEUE,
    time_limit=15 * MINUTE_MS,
    throws=(MalformedMessage, NotFound),
    **INFRASTRUCTURE_RETRIES,
)
def bulk_invite(chunk_id: int) -> None:
    """Decide one chunk of a bulk run, write its invitations claimed, and send them."""
    chunk_id = message_id(chunk_id, "chunk_id")
    current = runtime.current()
    config = current.dispatch_config()
    channels = current.channels()
    try:
        with current.session() as session:
            claim = dispatch.claim_on_write(session, config)
            queued = bulk.expand_chunk(
                session,
                chunk_id,
                extra_disposable_domains=current.settings.extra_disposable_domains,
                claim=claim,
            )
            result = dispatch.send_claim(session, claim.claim, channels=channels, config=config)
            if queued:  # a redelivered chunk: what a dead worker left queued
                dispatch.dispatch(session, queued, channels=channels, config=config, result=result)
    finally:
        channels.close()
    _enqueue_retries(result)


@register
@dramatiq.actor(
    queue_name=INVITATIONS_QUEUE,
    time_limit=2 * MINUTE_MS,
    throws=(MalformedMessage,),
    **INFRASTRUCTURE_RETRIES,
)
def dispatch_invitation(invitation_id: int) -> None:
    """Send one queued invitation (a single invite, a retry, or a replay)."""
    _send([message_id(invitation_id, "invitation_id")])


@register
@dramatiq.actor(
    queue_name=INVITATIONS_QUEUE,
    time_limit=15 * MINUTE_MS,
    throws=(MalformedMessage, NotFound),
    **INFRASTRUCTURE_RETRIES,
)
def user_action_chunk(chunk_id: int) -> None:
    """Reinvite, deactivate, activate or remove one chunk of a user type's portal users."""
    chunk_id = message_id(chunk_id, "chunk_id")
    with runtime.current().session() as session:
        invitation_ids = user_actions.run_chunk(session, chunk_id)
    _send(invitation_ids)


@register
@dramatiq.actor(
    queue_name=EVENTS_QUEUE,
    time_limit=MINUTE_MS,
    throws=(MalformedMessage, NotFound),
    **INFRASTRUCTURE_RETRIES,
)
def process_provider_event(event_id: int) -> None:
    """Classify one stored provider event (SES via SNS, Twilio callback) and apply it."""
    event_id = message_id(event_id, "event_id")
    with runtime.current().session() as session:
        after_send.process_event(session, event_id)


def send_now(invitation_ids: Sequence[int]) -> None:
    """Send committed queued invitations in this actor; what fails to start goes to the queue.

    For paths where the send is the point (an address change's confirmation), one queue
    hop instead of two. Trouble before the rows are claimed (the database away) hands them
    to ``dispatch_invitation`` as the two-hop path would have; a row already claimed is
    recovery's once its claim lapses.
    """
    try:
        _send(invitation_ids)
    except Exception:
        logger.warning("sending %s here failed; queued instead", invitation_ids, exc_info=True)
        for invitation_id in invitation_ids:
            dispatch_invitation.send(invitation_id)


def _send(invitation_ids: Sequence[int]) -> None:
    if not invitation_ids:
        return
    current = runtime.current()
    channels = current.channels()
    try:
        with current.session() as session:
            result = dispatch.dispatch(
                session, invitation_ids, channels=channels, config=current.dispatch_config()
            )
    finally:
        channels.close()
    _enqueue_retries(result)


def _enqueue_retries(result: send_outcomes.DispatchResult) -> None:
    # The rows are committed as queued with next_attempt_at; the replay sweep covers a lost send.
    for invitation_id, delay in result.retry:
        dispatch_invitation.send_with_options(
            args=(invitation_id,), delay=int(delay.total_seconds() * 1000)
        )
