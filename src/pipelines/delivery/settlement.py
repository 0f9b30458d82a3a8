"""Ending claimed rows and counting them: the writes dispatch and recovery share.

A batch's outcomes and recovery's completions are each one UPDATE per column set through a
named transition (:func:`write_transition`); every row that ends moves its bulk run's totals
(:func:`bump_run_totals`, which says which runs may be done), and a portal user whose first
invitation failed for good frees its record and licence (:func:`release_failed_users`).
Recovery ends lapsed claims here: as sent from their receipt (:func:`complete_from_receipts`)
or as failed when the last attempt lapsed (:func:`fail_claimed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    Invitation,
    InvitationStatus,
    PortalUserStatus,
    WebhookEventType,
)
from portalflow.pipelines import bulk_sql
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.invitations import bulk, tokens
from portalflow.pipelines.invitations.invitation_states import (
    Transition,
    guard,
    has_status,
    move_ids,
    target,
)
from portalflow.pipelines.users import lifecycle

from . import receipts

_INVITATIONS = Invitation.__table__


def write_transition(
    session: Session,
    transition: Transition,
    rows: list[dict[str, Any]],
    common: Mapping[str, Any],
) -> None:
    """``transition`` for ``rows`` (each its ``id`` and own columns): one UPDATE per column set."""
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(frozenset(row), []).append(row)
    for group in by_columns.values():
        bulk_sql.update_rows(
            session,
            _INVITATIONS,
            group,
            key="id",
            where=[guard(transition)],
            values={"status": target(transition), **common},
        )


def fail_claimed(
    session: Session, invitation_ids: Sequence[int], code: str, detail: str, at: datetime
) -> None:
    """End claimed (``sending``) rows as failed (recovery: the last attempt lapsed); flushed."""
    rows = session.execute(
        move_ids(
            Transition.EXHAUST,
            invitation_ids,
            values={
                "claim_token": None,
                "claim_deadline": None,
                "token_hash": None,
                "failure_code": code,
                "failure_detail": detail,
                "updated_at": at,
            },
        ).returning(Invitation.id, Invitation.bulk_run_id, Invitation.portal_user_id)
    ).all()
    outbox.invitation_events(session, WebhookEventType.INVITATION_FAILED, [row.id for row in rows])
    counters: dict[int, dict[str, int]] = {}
    for row in rows:
        if row.bulk_run_id is not None:
            counters.setdefault(row.bulk_run_id, {"sent": 0, "failed": 0})["failed"] += 1
    release_failed_users(session, [row.portal_user_id for row in rows if row.portal_user_id], at)
    bulk.finish_if_done(session, bump_run_totals(session, counters))


def complete_from_receipts(session: Session, rows: Sequence[Any], at: datetime) -> list[int]:
    """End as sent the lapsed claims the provider had taken (recovery); flushed.

    ``rows`` carry ``id``, ``message_id`` and ``sent_at`` from their receipt. The SMS
    debit stays (the provider took the message; its size was noted with the debit).
    Returns the ids completed.
    """
    ids = [row.id for row in rows]
    found = session.execute(
        select(Invitation.id, Invitation.bulk_run_id, Invitation.kind).where(
            Invitation.id.in_(ids), has_status(InvitationStatus.SENDING)
        )
    ).all()
    runs = {found_row.id: found_row.bulk_run_id for found_row in found}
    kinds = {found_row.id: found_row.kind for found_row in found}
    values = [
        {
            "id": row.id,
            "provider_message_id": row.message_id,
            "sent_at": row.sent_at,
            "expires_at": row.sent_at + tokens.lifetime(kinds[row.id]),
        }
        for row in rows
        if row.id in runs
    ]
    common = {
        "claim_token": None,
        "claim_deadline": None,
        "sms_debited": 0,
        "failure_code": None,
        "failure_detail": None,
        "updated_at": at,
    }
    if values:
        write_transition(session, Transition.COMPLETE_FROM_RECEIPT, values, common)
        completed = [value["id"] for value in values]
        outbox.invitation_events(session, WebhookEventType.INVITATION_SENT, completed, now=at)
    receipts.forget(session, ids)
    counters: dict[int, dict[str, int]] = {}
    for run_id in runs.values():
        if run_id is not None:
            counters.setdefault(run_id, {"sent": 0, "failed": 0})["sent"] += 1
    bulk.finish_if_done(session, bump_run_totals(session, counters))
    return sorted(runs)


def release_failed_users(session: Session, portal_user_ids: Sequence[int], at: datetime) -> None:
    """A user whose first invitation failed for good frees its record and licence."""
    lifecycle.transition_from(
        session, portal_user_ids, PortalUserStatus.INVITED, lifecycle.Action.REMOVE, at
    )


def bump_run_totals(session: Session, counters: Mapping[int, Mapping[str, int]]) -> list[int]:
    """Move the runs' totals; returns the runs left with nothing in flight (maybe done)."""
    emptied = []
    for run_id, counts in counters.items():
        queued = session.scalar(
            update(BulkRun)
            .where(BulkRun.id == run_id)
            .values(
                sent=BulkRun.sent + counts["sent"],
                failed=BulkRun.failed + counts["failed"],
                queued=BulkRun.queued - (counts["sent"] + counts["failed"]),
            )
            .returning(BulkRun.queued)
            .execution_options(synchronize_session=False)
        )
        # Only a run this update emptied can have become complete, so only those are checked.
        if queued == 0:
            emptied.append(run_id)
    return emptied
