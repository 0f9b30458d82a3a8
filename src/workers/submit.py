"""Starting work: record the request, commit, then enqueue. Every entry point comes here.

The CLI, the admin and event HTTP handlers and :func:`portalflow.events.publish` start
flows through these functions, so the order that loses nothing is written once: the rows
first, the commit, and only then the messages (a message lost after the commit is found
again by the recovery sweep, which reads the rows). An optional :class:`Once` makes a
request idempotent: its first answer is stored in the same transaction as the work, and a
retry gets that answer back without a second run.

Each starter takes the ``send`` that puts its ids on the queue (the actors' ``send`` by
default; the web app and tests may pass their own). A starter returns a
:class:`Submission`; :func:`submit` or :func:`submit_once` carries it out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from portalflow.models import Channel, CrmEventKind, CrmEventStatus
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.crm_webhooks import delivery as webhook_delivery
from portalflow.pipelines.delivery import pauses, provider_events
from portalflow.pipelines.delivery.webhook_payloads import IncomingEvent
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.invitations.bulk import StartedRun
from portalflow.pipelines.signin.credentials import MessageAdmission, MessageRequest
from portalflow.pipelines.tenancy import idempotency
from portalflow.pipelines.users import user_actions

from . import enqueue
from .address_actors import handle_crm_event

log = logging.getLogger(__name__)

Result = TypeVar("Result")
SendIds = Callable[[Sequence[int]], object]
SendId = Callable[[int], object]


@dataclass(frozen=True)
class Submission(Generic[Result]):
    """One request to start work: the rows it writes, and the messages once they are committed."""

    record: Callable[[Session], Result]
    after_commit: Callable[[Result], object]


@dataclass(frozen=True)
class Once:
    """An idempotent request: the org's key, the request's fingerprint, the answer's status."""

    org_id: int
    key: str
    fingerprint: str
    status_code: int


@dataclass(frozen=True)
class Replayed:
    """The answer stored for a key: the request was made before and is not run again."""

    body: dict[str, Any]
    status_code: int


def submit(session: Session, submission: Submission[Result]) -> Result:
    """Write the submission's rows, commit, then enqueue its messages."""
    result = submission.record(session)
    session.commit()
    submission.after_commit(result)
    return result


def submit_once(
    session: Session,
    submission: Submission[Result],
    once: Once,
    answer: Callable[[Result], dict[str, Any]],
) -> Result | Replayed:
    """:func:`submit`, unless the key's answer is stored: then that answer, and no second run.

    ``answer`` is the body stored under the key, in the same transaction as the rows. When a
    concurrent retry stored the key first, this request's rows are rolled back and that
    request's answer is returned instead.
    """
    stored = idempotency.find_answer(session, once.org_id, once.key, once.fingerprint)
    if stored is not None:
        return Replayed(stored.body, stored.status_code)
    result = submission.record(session)
    stored = idempotency.remember_answer(
        session, once.org_id, once.key, once.fingerprint, once.status_code, answer(result)
    )
    if stored is not None:
        session.rollback()
        return Replayed(stored.body, stored.status_code)
    session.commit()
    submission.after_commit(result)
    return result


def done_at_once(work: Callable[[Session], Result]) -> Submission[Result]:
    """Work that is finished when committed (a transfer): nothing to enqueue."""
    return Submission(work, lambda _: None)


def invite(*, send: SendIds = enqueue.enqueue_chunks, **request: Any) -> Submission[StartedRun]:
    """A bulk invite (``bulk.start_bulk_run``'s arguments); its chunks queued after commit."""
    return Submission(
        lambda session: bulk.start_bulk_run(session, **request),
        lambda started: send(started.chunk_ids),
    )


def user_action(
    *, send: SendIds = enqueue.enqueue_action_chunks, **request: Any
) -> Submission[StartedRun]:
    """A bulk user action (``user_actions.start_user_action``'s arguments), then its chunks."""
    return Submission(
        lambda session: user_actions.start_user_action(session, **request),
        lambda started: send(started.chunk_ids),
    )


def resume_channel(
    org_id: int, channel: Channel, *, send: SendIds = enqueue.enqueue_dispatch
) -> Submission[list[int]]:
    """Resume a paused channel; the invitations it held are queued after the commit."""
    return Submission(lambda session: pauses.resume(session, org_id, channel), send)


def provider_event(event: IncomingEvent, *, send: SendId) -> Submission[tuple[int, bool]]:
    """A provider's webhook event, stored once per dedupe key; a new one to classify is queued.

    A failed enqueue is logged, not raised: the row is committed as received, the provider
    must not be told to retry, and the replay sweep finds the row.
    """

    def record(session: Session) -> tuple[int, bool]:
        return provider_events.record_provider_event(
            session,
            provider=event.provider,
            dedupe_key=event.dedupe_key,
            payload=event.payload,
            status=event.status,
            detail=event.detail,
        )

    def queue(stored: tuple[int, bool]) -> None:
        event_id, created = stored
        if not (created and event.to_classify):
            return
        try:
            send(event_id)
        except Exception:
            log.exception("could not enqueue provider event %s; left for the replay", event_id)

    return Submission(record, queue)


def redeliver_webhooks(
    org_id: int,
    delivery_ids: Sequence[int],
    *,
    send: SendIds = enqueue.enqueue_webhook_deliveries,
) -> Submission[list[int]]:
    """These dead CRM webhook deliveries of the org, with fresh attempts, queued after commit."""
    return Submission(
        lambda session: webhook_delivery.redeliver(session, org_id, delivery_ids), send
    )


def sign_in_message(
    admission: MessageAdmission,
    write: Callable[[Session, MessageAdmission], MessageRequest],
    *,
    send: SendIds = enqueue.enqueue_dispatch,
) -> Submission[MessageRequest]:
    """A sign-in code or reset message: ``write`` decides who gets it; queued after commit."""

    def queue(written: MessageRequest) -> None:
        if written.message_ids:
            send(written.message_ids)

    return Submission(lambda session: write(session, admission), queue)


@dataclass(frozen=True)
class RecordedEvent:
    """A CRM event as stored (as it was at the commit), and whether this call stored it."""

    event_id: int
    created: bool
    status: CrmEventStatus
    result_code: str | None
    detail: str | None


def crm_event(
    org_id: int,
    kind: CrmEventKind | str,
    event_id: str,
    payload: dict[str, Any],
    *,
    send: SendId = handle_crm_event.send,
    send_repeats: bool = False,
) -> Submission[RecordedEvent]:
    """A CRM event, stored once per event id, then queued.

    A repeat of a known id is queued again only with ``send_repeats`` (its handler does
    nothing twice); by default only a new event is queued.
    """

    def record(session: Session) -> RecordedEvent:
        row, created = crm_events.record_event(session, org_id, kind, event_id, payload)
        return RecordedEvent(row.id, created, row.status, row.result_code, row.detail)

    def queue(recorded: RecordedEvent) -> None:
        if recorded.created or send_repeats:
            send(recorded.event_id)

    return Submission(record, queue)
