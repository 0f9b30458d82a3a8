"""Transfer and delete: every user of a user type moves to another type, then the type goes.

Rules (PORTALS.md, "Moving users between user types"): deleting a type that has users is
"transfer and delete": every user moves, then the type goes. The Client Portal type cannot
be deleted. The target obeys the rules of every move (:mod:`.move_rules`): the same
invitation preference and module, and room for the users who hold a licence.

Transfer and delete runs in committed batches. Every batch moves its rows in one
transaction and the type row exists until nothing references it, so a crash between
batches leaves every user with a type; calling :func:`continue_transfer_and_delete` again
finishes the job. Rows other than users that name the type (invitations, bulk runs: the
history) are moved to the target type too, and the type's own email templates are deleted
with it (the target keeps its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, delete, func, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    Base,
    EmailTemplate,
    PortalUser,
    PortalUserType,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.access import config as access_config
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.tenancy import orgs

from . import lifecycle
from .lifecycle import Action
from .move_rules import check_capacity, check_compatible


def start_transfer_and_delete(
    session: Session, org_id: int, user_type_id: int, to_user_type_id: int
) -> None:
    """Mark ``user_type_id`` for deletion into ``to_user_type_id`` (flushed, not committed).

    Starting again with the same target is a no-op (resume with
    :func:`continue_transfer_and_delete`); another target is refused while one is set.
    """
    org = orgs.get_org(session, org_id)
    source = orgs.get_user_type(session, org_id, user_type_id)
    target = orgs.get_user_type(session, org_id, to_user_type_id)
    if source.is_client_portal:
        raise InvalidInput("the Client Portal user type cannot be deleted")
    if source.id == target.id:
        raise InvalidInput("a user type cannot be transferred into itself; choose another target")
    licences.lock_user_type(session, source.id)
    session.refresh(source)
    if source.transfer_to_id is not None:
        if source.transfer_to_id == target.id:
            return
        raise InvalidInput(
            f"user type {source.name!r} is already being deleted into user type "
            f"{source.transfer_to_id}; finish that first"
        )
    if target.transfer_to_id is not None:
        raise InvalidInput(f"user type {target.name!r} is itself being deleted; choose another")
    incoming = session.scalar(
        select(PortalUserType.name).where(PortalUserType.transfer_to_id == source.id).limit(1)
    )
    if incoming is not None:
        raise InvalidInput(
            f"user type {incoming!r} is being deleted into {source.name!r}; wait for it to finish"
        )
    check_compatible(source, target)
    licences.lock_user_type(session, target.id)
    holders = (
        session.scalar(
            select(func.count()).where(
                PortalUser.user_type_id == source.id,
                PortalUser.status.not_in(licences.NON_HOLDING_STATUSES),
            )
        )
        or 0
    )
    check_capacity(session, org, target, holders)
    source.transfer_to_id = target.id
    session.flush()


def continue_transfer_and_delete(
    session: Session,
    user_type_id: int,
    *,
    batch_size: int = 500,
    max_batches: int | None = 1,
    now: datetime | None = None,
) -> bool:
    """Move the next batch(es) and commit each; True once the type is deleted (or gone).

    One batch per call by default (``max_batches=None``: until done). Every user moves,
    whatever their status (removed users too: the row must not lose its type). Then the
    other rows naming the type move, and finally, in one transaction that holds the type's
    row lock, its email templates and the type itself are deleted. Safe to call again after
    a crash and to run twice at once (each batch locks the type row first).
    """
    if batch_size < 1:
        raise InvalidInput("batch size must be at least 1")
    done = 0
    while True:
        finished = _next_batch(session, user_type_id, batch_size, now or utcnow())
        session.commit()
        if finished:
            return True
        done += 1
        if max_batches is not None and done >= max_batches:
            return False


def users_left(session: Session, user_type_id: int) -> int:
    """How many portal users (any status) the type still holds."""
    query = select(func.count()).where(PortalUser.user_type_id == user_type_id)
    return session.scalar(query) or 0


def _next_batch(session: Session, source_id: int, batch_size: int, now: datetime) -> bool:
    source = session.get(PortalUserType, source_id, with_for_update=True, populate_existing=True)
    if source is None:
        return True  # already deleted: a repeated or concurrent call
    target_id = source.transfer_to_id
    if target_id is None:
        raise InvalidInput(
            f"user type {source.name!r} is not being deleted; start a transfer and delete first"
        )
    ids = list(
        session.scalars(
            select(PortalUser.id)
            .where(PortalUser.user_type_id == source_id)
            .order_by(PortalUser.id)
            .limit(batch_size)
            .with_for_update()
        )
    )
    if ids:
        session.execute(
            update(PortalUser)
            .where(PortalUser.id.in_(ids), PortalUser.user_type_id == source_id)
            .values(user_type_id=target_id, updated_at=now)
            .execution_options(synchronize_session="evaluate")
        )
        lifecycle.end_sessions(session, ids, Action.TRANSFER, now)
        outbox.user_events(
            session,
            WebhookEventType.USER_TRANSFERRED,
            ids,
            org_id=source.org_id,
            extra={user_id: {"from_user_type_id": source_id} for user_id in ids},
            now=now,
        )
        licences.sync_holders(session, [source_id, target_id])
        return False
    for table, column in _other_references():
        (key,) = table.primary_key.columns
        ids = list(
            session.scalars(select(key).where(column == source_id).order_by(key).limit(batch_size))
        )
        if ids:
            session.execute(
                update(table).where(key.in_(ids), column == source_id).values({column: target_id})
            )
            return False
    session.execute(delete(EmailTemplate).where(EmailTemplate.user_type_id == source_id))
    access_config.forget_user_type(session, source_id)  # what it exposed goes with it
    # A type being deleted into this one (a race past start's check) follows to the target.
    session.execute(
        update(PortalUserType)
        .where(PortalUserType.transfer_to_id == source_id)
        .values(transfer_to_id=target_id)
        .execution_options(synchronize_session="evaluate")
    )
    session.delete(source)
    session.flush()
    return True


def _other_references() -> Iterator[tuple[Table, Column[Any]]]:
    """Every (table, column) naming a user type, other than users, templates and types."""
    handled = {
        PortalUser.__tablename__,
        EmailTemplate.__tablename__,
        "portal_user_types",
        *access_config.USER_TYPE_TABLES,
    }
    for table in Base.metadata.sorted_tables:
        if table.name in handled:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == "portal_user_types":
                yield table, fk.parent  # type: ignore[misc]
