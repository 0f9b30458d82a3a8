"""The invitation events' outbox rows on PostgreSQL, bodies and all, in one statement.

A bulk invite announces every invitation twice (queued, then sent), so this is the outbox's
hot path: PostgreSQL reads the rows, builds each body with ``json_build_object`` and inserts
the deliveries in one ``INSERT ... SELECT``, and Python sends only the ids. The bodies say
what ``outbox``'s Python path (SQLite, and the reference) says, field for field: a test
holds the two to the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from portalflow.models import OutcomeClass, WebhookEventType

from .payloads import TEMPORARY_CODES

T = WebhookEventType

_BASE_FIELDS = (
    "'invitation_id', e.id, 'record_id', e.crm_id, 'user_type_id', e.user_type_id, "
    "'portal_user_id', e.portal_user_id, 'bulk_run_id', e.bulk_run_id, "
    "'channel', e.channel, 'kind', e.kind"
)
_EXPIRES_AT = "to_char(e.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
_TEMPORARY = ", ".join(f"'{code}'" for code in sorted(TEMPORARY_CODES))
_AFTER_SEND = f"e.outcome_class IS NOT NULL AND e.outcome_class <> '{OutcomeClass.DELIVERED}'"
# payloads.failure_fields, as SQL: after the send the provider's verdict, before it ours.
_FAILURE_FIELDS = (
    f"'stage', CASE WHEN {_AFTER_SEND} THEN 'after_send' "
    "WHEN e.attempts > 0 THEN 'at_send' ELSE 'before_send' END, "
    f"'code', CASE WHEN {_AFTER_SEND} THEN e.outcome_code ELSE e.failure_code END, "
    f"'outcome_class', CASE WHEN {_AFTER_SEND} THEN e.outcome_class "
    f"WHEN e.failure_code IN ({_TEMPORARY}) THEN '{OutcomeClass.TEMPORARY}' "
    f"ELSE '{OutcomeClass.PERMANENT}' END"
)
_DATA = (
    "CASE e.event_type "
    f"WHEN '{T.INVITATION_SENT}' THEN json_build_object({_BASE_FIELDS}, "
    f"'expires_at', {_EXPIRES_AT}) "
    f"WHEN '{T.INVITATION_FAILED}' THEN json_build_object({_BASE_FIELDS}, {_FAILURE_FIELDS}) "
    f"WHEN '{T.INVITATION_DELIVERED}' THEN json_build_object({_BASE_FIELDS}, "
    "'code', e.outcome_code) "
    f"ELSE json_build_object({_BASE_FIELDS}) END"
)
# One event id per invitation and type, shared by every endpoint that wants it; rows are
# numbered in the order the Python path writes them (type, invitation, endpoint).
_INSERT = text(
    "WITH events AS ("
    "SELECT i.id, i.org_id, i.crm_id, i.user_type_id, i.portal_user_id, i.bulk_run_id, "
    "i.channel, i.kind, i.attempts, i.failure_code, i.outcome_class, i.outcome_code, "
    "i.expires_at, (CAST(:types AS text[]))[given.rank] AS event_type, given.rank, "
    "'evt_' || replace(CAST(gen_random_uuid() AS text), '-', '') AS event_id "
    "FROM unnest(CAST(string_to_array(:ids, ',') AS integer[]), "
    "CAST(string_to_array(:ranks, ',') AS integer[])) AS given (id, rank) "
    "JOIN invitations i ON i.id = given.id) "
    "INSERT INTO webhook_deliveries (status, attempts, next_attempt_at, created_at, "
    "updated_at, org_id, endpoint_id, event_id, event_type, order_key, body) "
    "SELECT 'pending', 0, :at, :at, :at, e.org_id, wants.endpoint_id, e.event_id, "
    "e.event_type, CASE WHEN e.portal_user_id IS NOT NULL THEN 'user:' || e.portal_user_id "
    "ELSE left('record:' || e.crm_id, 80) END, "
    "CAST(json_build_object('id', e.event_id, 'type', e.event_type, 'created_at', "
    f"CAST(:created_at AS text), 'org_id', e.org_id, 'data', {_DATA}) AS text) "
    "FROM events e JOIN unnest(CAST(:want_orgs AS integer[]), CAST(:want_types AS text[]), "
    "CAST(:want_endpoints AS integer[])) AS wants (org_id, event_type, endpoint_id) "
    "ON wants.org_id = e.org_id AND wants.event_type = e.event_type "
    "ORDER BY e.rank, e.id, wants.endpoint_id "
    "RETURNING id"
)


def insert_invitation_events(
    session: Session,
    changes: Mapping[WebhookEventType, Sequence[int]],
    wants: Sequence[tuple[int, WebhookEventType, int]],
    *,
    created_at: str,
    written_at: datetime,
) -> list[int]:
    """Write each change's deliveries to the endpoints in ``wants`` (org, type, endpoint)."""
    # The ids travel as one text that PostgreSQL splits: as an integer[] parameter psycopg
    # adapts each element in Python, most of what this statement cost the worker.
    ids = ",".join(str(i) for invitation_ids in changes.values() for i in invitation_ids)
    ranks = ",".join(
        str(rank)
        for rank, invitation_ids in enumerate(changes.values(), start=1)
        for _ in invitation_ids
    )
    return list(
        session.scalars(
            _INSERT,
            {
                "ids": ids,
                "types": [event_type.value for event_type in changes],
                "ranks": ranks,
                "want_orgs": [org_id for org_id, _, _ in wants],
                "want_types": [event_type.value for _, event_type, _ in wants],
                "want_endpoints": [endpoint_id for _, _, endpoint_id in wants],
                "at": written_at,
                "created_at": created_at,
            },
        )
    )
