"""Transfers: moving chosen portal users to another user type.

Rules (PORTALS.md, "Moving users between user types"):

- users move only between types of the same invitation preference (and the same module: a
  Vendors record does not belong in a Contacts type); otherwise nobody moves;
- a transfer keeps each user's status and confirmation; the state machine says who may be
  transferred (confirmed, login suspended, deactivated);
- a transfer never pushes the target over its licence limit (``licence_limit``).

The first and last rules are those of every move between types (:mod:`.move_rules`);
deleting a type moves its users by :mod:`.transfer_and_delete`, and a converted lead's user
moves by :mod:`.lead_conversion`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    PortalUser,
    PortalUserType,
    Refusal,
    RefusalCode,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.tenancy import orgs

from . import lifecycle
from .lifecycle import Action, InvalidTransition
from .move_rules import check_capacity, check_compatible

UPDATE_CHUNK = 500


@dataclass
class TransferResult:
    """Who moved, and who did not and why (the others moved)."""

    moved: list[int] = field(default_factory=list)
    refused: dict[int, Refusal] = field(default_factory=dict)  # portal user id -> why


def transfer_users(
    session: Session,
    org_id: int,
    user_ids: Sequence[int],
    to_user_type_id: int,
    now: datetime | None = None,
) -> TransferResult:
    """Move users to another type, keeping status and confirmation (flushed, not committed).

    Refused as a whole (InvalidInput, nobody moved) when a user's type has another
    invitation preference or module than the target, when the target is being deleted, or
    when the users who hold a licence would not fit in the target (``licence_limit``).
    Refused per user: unknown ids, users already of the target, and statuses the state
    machine does not transfer (invited, removed).
    """
    now = now or utcnow()
    org = orgs.get_org(session, org_id)
    target = orgs.get_user_type(session, org_id, to_user_type_id)
    if target.transfer_to_id is not None:
        raise InvalidInput(
            f"user type {target.name!r} is being deleted; transfer the users to another type"
        )
    wanted = list(dict.fromkeys(user_ids))
    result = TransferResult()
    if not wanted:
        return result
    licences.lock_user_type(session, target.id)
    rows = session.execute(
        select(PortalUser.id, PortalUser.status, PortalUser.user_type_id)
        .where(PortalUser.org_id == org_id, PortalUser.id.in_(wanted))
        .order_by(PortalUser.id)
        .with_for_update()
    ).all()
    found = {row.id: row for row in rows}
    for type_id in sorted({row.user_type_id for row in rows} - {target.id}):
        check_compatible(orgs.get_user_type(session, org_id, type_id), target)
    allowed, holders = _sort_requested(org_id, target, wanted, found, result.refused)
    check_capacity(session, org, target, holders)
    for ids in _chunks(allowed, UPDATE_CHUNK):
        session.execute(
            update(PortalUser)
            .where(PortalUser.id.in_(ids))
            .values(user_type_id=target.id, updated_at=now)
            .execution_options(synchronize_session="evaluate")
        )
    result.moved.extend(allowed)
    session.flush()
    lifecycle.end_sessions(session, allowed, Action.TRANSFER, now)
    outbox.user_events(
        session,
        WebhookEventType.USER_TRANSFERRED,
        allowed,
        org_id=org_id,
        extra={uid: {"from_user_type_id": found[uid].user_type_id} for uid in allowed},
        now=now,
    )
    moved_from = {found[user_id].user_type_id for user_id in allowed}
    licences.sync_holders(session, moved_from | ({target.id} if allowed else set()))
    return result


def _sort_requested(
    org_id: int,
    target: PortalUserType,
    wanted: Sequence[int],
    found: dict[int, Any],
    refused: dict[int, Refusal],
) -> tuple[list[int], int]:
    """The users that may move and how many of them hold a licence; the others in refused."""
    allowed: list[int] = []
    holders = 0
    for user_id in wanted:
        row = found.get(user_id)
        if row is None:
            refused[user_id] = lifecycle.unknown_user(user_id, org_id)
        elif row.user_type_id == target.id:
            refused[user_id] = Refusal(
                RefusalCode.ALREADY_OF_USER_TYPE,
                f"portal user {user_id} is already of user type {target.name!r}",
            )
        elif (row.status, Action.TRANSFER) not in lifecycle.TRANSITIONS:
            refused[user_id] = InvalidTransition(user_id, row.status, Action.TRANSFER).refusal
        else:
            allowed.append(user_id)
            holders += row.status not in licences.NON_HOLDING_STATUSES
    return allowed, holders


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
