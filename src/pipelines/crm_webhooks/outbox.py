"""The outbox writer: flows call it inside their own transaction, after the change.

One row per event and wanting endpoint goes into ``webhook_deliveries`` with the change, so
it commits or rolls back with it. Set-based: a batch of changes is one lookup of the
endpoints that want the event type (all an org without one pays), one SELECT of what the
bodies need and one INSERT; an invitation's events on PostgreSQL are one statement
(``invitation_bodies``). The new rows' ids are kept in ``session.info`` for the workers
layer to enqueue once the transaction commits; a message lost in between is the replay
sweep's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from portalflow.models import (
    CrmRecord,
    Invitation,
    PortalUser,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines import bulk_sql

from . import invitation_bodies, payloads

# session.info key: ids of delivery rows written in the current transaction.
PENDING_KEY = "portalflow.webhook_deliveries"
T = WebhookEventType


@dataclass(frozen=True)
class Event:
    """One change to tell: its type and org, the body's ``data``, what keeps it in order."""

    event_type: WebhookEventType
    org_id: int
    data: Mapping[str, Any]
    order_key: str | None = None


class Subscribers:
    """The enabled endpoints of some orgs, and which event types each wants."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = [(row.id, row.org_id, frozenset(row.event_types or ())) for row in rows]

    def __bool__(self) -> bool:
        return bool(self._rows)

    def orgs(self) -> set[int]:
        return {org_id for _, org_id, _ in self._rows}

    def wants(self, event_types: Iterable[WebhookEventType]) -> list[tuple[int, T, int]]:
        """Every (org, event type, endpoint) for which the endpoint wants the type."""
        return [
            (org_id, event_type, endpoint_id)
            for event_type in event_types
            for org_id in self.orgs()
            for endpoint_id in self.wanting(event_type, org_id)
        ]

    def wanting(self, event_type: WebhookEventType, org_id: int) -> list[int]:
        """The endpoints of ``org_id`` that want ``event_type`` (no types: every one)."""
        return [
            endpoint_id
            for endpoint_id, org, types in self._rows
            if org == org_id and (not types or event_type.value in types)
        ]


def subscribers(session: Session, org_ids: Iterable[int] | Select[Any]) -> Subscribers:
    """The enabled endpoints of the orgs (one indexed query; none for most orgs)."""
    where = org_ids if isinstance(org_ids, Select) else list(set(org_ids))
    return Subscribers(
        session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.org_id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.org_id.in_(where), WebhookEndpoint.enabled.is_(True)
            )
        ).all()
    )


def emit(
    session: Session,
    events: Sequence[Event],
    *,
    now: datetime | None = None,
    endpoints: Subscribers | None = None,
) -> int:
    """Write the deliveries of ``events`` (one INSERT); returns how many rows were written."""
    if not events:
        return 0
    if endpoints is None:
        endpoints = subscribers(session, {event.org_id for event in events})
    if not endpoints:
        return 0
    written_at = utcnow()  # the row's clock is the real one, whatever time the flow runs at
    created_at = payloads.timestamp(now or written_at)
    rows = []
    for event in events:
        wanting = endpoints.wanting(event.event_type, event.org_id)
        if not wanting:
            continue
        event_id = payloads.new_event_id()
        body = payloads.body(event_id, event.event_type, event.org_id, created_at, dict(event.data))
        for endpoint_id in wanting:
            rows.append(
                {
                    "org_id": event.org_id,
                    "endpoint_id": endpoint_id,
                    "event_id": event_id,
                    "event_type": event.event_type,
                    "order_key": event.order_key,
                    "body": body,
                }
            )
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        ids = _insert_postgresql(session, rows, written_at)
    else:
        ids = [
            row.id
            for row in bulk_sql.insert_rows(
                session,
                WebhookDelivery.__table__,  # type: ignore[arg-type]
                rows,
                returning=("id",),
                constants={
                    "status": WebhookDeliveryStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": written_at,
                    "created_at": written_at,
                    "updated_at": written_at,
                },
            )
        ]
    session.info.setdefault(PENDING_KEY, []).extend(ids)
    return len(ids)


# Text columns travel as one text each, joined by the ASCII record separator and split by
# PostgreSQL: as text[] parameters psycopg scans each element, and escapes every quote of
# every JSON body with a regular expression, which was most of what the outbox cost a bulk
# invite. JSON text never holds a raw control character (json.dumps writes \u001e), nor do
# event ids, types and order keys, so the split is exact; an empty order key is NULL.
SEPARATOR = "\x1e"
_INSERT = text(
    "INSERT INTO webhook_deliveries (status, attempts, next_attempt_at, created_at, "
    "updated_at, org_id, endpoint_id, event_id, event_type, order_key, body) "
    "SELECT 'pending', 0, :at, :at, :at, given.org_id, given.endpoint_id, given.event_id, "
    "given.event_type, NULLIF(given.order_key, ''), given.body FROM unnest("
    "CAST(:org_ids AS integer[]), CAST(:endpoint_ids AS integer[]), "
    "string_to_array(:event_ids, chr(30)), string_to_array(:event_types, chr(30)), "
    "string_to_array(:order_keys, chr(30)), string_to_array(:bodies, chr(30))) "
    "AS given (org_id, endpoint_id, event_id, event_type, order_key, body) "
    "RETURNING id"
)


def _insert_postgresql(
    session: Session, rows: Sequence[Mapping[str, Any]], at: datetime
) -> list[int]:
    def joined(name: str) -> str:
        return SEPARATOR.join(str(row[name] or "") for row in rows)

    return list(
        session.scalars(
            _INSERT,
            {
                "at": at,
                "org_ids": [row["org_id"] for row in rows],
                "endpoint_ids": [row["endpoint_id"] for row in rows],
                "event_ids": joined("event_id"),
                "event_types": SEPARATOR.join(row["event_type"].value for row in rows),
                "order_keys": joined("order_key"),
                "bodies": joined("body"),
            },
        )
    )


def invitations_changed(
    session: Session,
    changes: Mapping[WebhookEventType, Sequence[int]],
    *,
    org_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Tell each event type about its invitations (their rows as they are now).

    ``org_id``, when every invitation is of one org, saves the lookup of their orgs.
    """
    ids = sorted({i for invitation_ids in changes.values() for i in invitation_ids})
    if not ids:
        return 0
    orgs: Iterable[int] | Select[Any] = (
        [org_id]
        if org_id is not None
        else select(Invitation.org_id).where(bulk_sql.among(session, Invitation.id, ids))
    )
    endpoints = subscribers(session, orgs)
    if not endpoints:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        written = invitation_bodies.insert_invitation_events(
            session,
            {
                event_type: sorted(set(changed))
                for event_type, changed in changes.items()
                if changed
            },
            endpoints.wants(changes),
            created_at=payloads.timestamp(now or utcnow()),
            written_at=utcnow(),
        )
        session.info.setdefault(PENDING_KEY, []).extend(written)
        return len(written)
    return emit(
        session, invitation_event_list(session, changes, endpoints), now=now, endpoints=endpoints
    )


def invitation_event_list(
    session: Session, changes: Mapping[WebhookEventType, Sequence[int]], endpoints: Subscribers
) -> list[Event]:
    """The changes' events, built in Python: SQLite's path, and the reference of the SQL one."""
    ids = sorted({i for invitation_ids in changes.values() for i in invitation_ids})
    rows = {
        row.id: row
        for row in session.execute(
            select(
                Invitation.id,
                Invitation.org_id,
                Invitation.crm_id,
                Invitation.user_type_id,
                Invitation.portal_user_id,
                Invitation.bulk_run_id,
                Invitation.channel,
                Invitation.kind,
                Invitation.attempts,
                Invitation.failure_code,
                Invitation.outcome_class,
                Invitation.outcome_code,
                Invitation.expires_at,
            ).where(
                bulk_sql.among(session, Invitation.id, ids),
                Invitation.org_id.in_(endpoints.orgs()),
            )
        ).all()
    }
    events = []
    for event_type, invitation_ids in changes.items():
        for invitation_id in sorted(invitation_ids):
            row = rows.get(invitation_id)
            if row is not None:
                events.append(_invitation_event(event_type, row))
    return events


def invitation_events(
    session: Session,
    event_type: WebhookEventType,
    invitation_ids: Sequence[int],
    *,
    org_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Tell ``event_type`` about each of the invitations."""
    return invitations_changed(session, {event_type: invitation_ids}, org_id=org_id, now=now)


def _invitation_event(event_type: WebhookEventType, row: Any) -> Event:
    data: dict[str, Any] = {
        "invitation_id": row.id,
        "record_id": row.crm_id,
        "user_type_id": row.user_type_id,
        "portal_user_id": row.portal_user_id,
        "bulk_run_id": row.bulk_run_id,
        "channel": row.channel.value,
        "kind": row.kind.value,
    }
    if event_type == T.INVITATION_SENT:
        data["expires_at"] = row.expires_at.isoformat() if row.expires_at else None
    elif event_type == T.INVITATION_FAILED:
        data |= payloads.failure_fields(
            row.failure_code, row.outcome_class, row.outcome_code, row.attempts > 0
        )
    elif event_type == T.INVITATION_DELIVERED:
        data["code"] = row.outcome_code
    return Event(event_type, row.org_id, data, payloads.order_key(row.portal_user_id, row.crm_id))


def user_events(
    session: Session,
    event_type: WebhookEventType,
    user_ids: Sequence[int],
    *,
    org_id: int | None = None,
    extra: Mapping[int, Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> int:
    """Tell ``event_type`` about each of the portal users (``extra``: more data per user)."""
    if not user_ids:
        return 0
    ids = sorted(set(user_ids))
    orgs: Iterable[int] | Select[Any] = (
        [org_id]
        if org_id is not None
        else select(PortalUser.org_id).where(bulk_sql.among(session, PortalUser.id, ids))
    )
    endpoints = subscribers(session, orgs)
    if not endpoints:
        return 0
    rows = session.execute(
        select(
            PortalUser.id,
            PortalUser.org_id,
            PortalUser.user_type_id,
            PortalUser.status,
            CrmRecord.crm_id,
            CrmRecord.module,
        )
        .join(CrmRecord, CrmRecord.id == PortalUser.record_id)
        .where(
            bulk_sql.among(session, PortalUser.id, ids),
            PortalUser.org_id.in_(endpoints.orgs()),
        )
        .order_by(PortalUser.id)
    ).all()
    extra = extra or {}
    events = [
        Event(
            event_type,
            row.org_id,
            {
                "portal_user_id": row.id,
                "record_id": row.crm_id,
                "module": row.module,
                "user_type_id": row.user_type_id,
                "status": row.status.value,
                **extra.get(row.id, {}),
            },
            payloads.order_key(row.id, row.crm_id),
        )
        for row in rows
    ]
    return emit(session, events, now=now, endpoints=endpoints)


def written_ids(session: Session) -> list[int]:
    """The delivery ids written since the last call (for enqueueing after the commit)."""
    return session.info.pop(PENDING_KEY, [])
