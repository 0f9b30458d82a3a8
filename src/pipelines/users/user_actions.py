"""Bulk actions on a user type's portal users: reinvite, deactivate, activate, remove.

Like an invite, an action is a run of chunks (portal user ids) so its totals and refusals
are read the same way and a lost message is recovered from the rows. ``sent`` counts the
users acted on; ``failed`` the users refused, each with a row saying why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkAction,
    BulkActionRefusal,
    BulkChunk,
    BulkRun,
    ChunkStatus,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    Refusal,
    RefusalCode,
    utcnow,
)
from portalflow.pipelines.errors import InvalidInput, NotFound, Refused
from portalflow.pipelines.invitations import bulk, reinvite
from portalflow.pipelines.invitations.bulk import StartedRun
from portalflow.pipelines.invitations.invitation_states import Transition, has_status, move
from portalflow.pipelines.licensing import licences, seat_usage
from portalflow.pipelines.tenancy import orgs

from . import address_changes, lifecycle
from .lifecycle import Action, UserFilter

# Each user action and the state machine's name for it.
ACTIONS: dict[BulkAction, Action] = {
    BulkAction.REINVITE: Action.REINVITE,
    BulkAction.DEACTIVATE: Action.DEACTIVATE,
    BulkAction.ACTIVATE: Action.ACTIVATE,
    BulkAction.REMOVE: Action.REMOVE,
}


def start_user_action(
    session: Session,
    *,
    org_id: int,
    user_type_id: int,
    actor_id: int,
    action: BulkAction,
    user_ids: Iterable[int] | None = None,
    user_filter: UserFilter = UserFilter.ALL,
    language: str = "en",
    chunk_size: int = 500,
) -> StartedRun:
    """Write the run and its chunks (flushed; the caller commits, then enqueues the chunks).

    Targets are ``user_ids`` if given, else every user of the type the filter shows.
    """
    if action not in ACTIONS:
        raise InvalidInput(f"{action.value} is not a bulk user action")
    orgs.get_user_type(session, org_id, user_type_id)
    orgs.get_crm_user(session, org_id, actor_id)
    ids = lifecycle.user_ids(session, org_id, user_filter, user_type_id, user_ids)
    if not ids:
        raise InvalidInput(f"no portal users to {action.value}")
    run = BulkRun(
        org_id=org_id,
        user_type_id=user_type_id,
        inviter_id=actor_id,
        kind=EmailKind.ACCEPT_INVITATION,
        action=action,
        language=language,
        requested=len(ids),
    )
    session.add(run)
    session.flush()
    chunks = [
        BulkChunk(bulk_run_id=run.id, seq=seq, crm_ids=[str(i) for i in ids[at : at + chunk_size]])
        for seq, at in enumerate(range(0, len(ids), chunk_size))
    ]
    session.add_all(chunks)
    session.flush()
    return StartedRun(run.id, [chunk.id for chunk in chunks], len(ids))


def run_chunk(session: Session, chunk_id: int, now: datetime | None = None) -> list[int]:
    """Act on one chunk's users, once; returns invitation ids to dispatch after the commit."""
    chunk = session.get(BulkChunk, chunk_id, with_for_update=True)
    if chunk is None:
        raise NotFound(f"bulk chunk {chunk_id} does not exist")
    if chunk.status != ChunkStatus.PENDING:
        return []
    run = session.get_one(BulkRun, chunk.bulk_run_id)
    now = now or utcnow()
    user_ids = [int(i) for i in chunk.crm_ids]
    if run.action == BulkAction.REINVITE:
        done, refused, invitations = _reinvite(session, run, user_ids)
    else:
        done, refused, invitations = _transition(session, run, user_ids, now)
    if refused:
        session.execute(
            insert(BulkActionRefusal),
            [
                {
                    "bulk_run_id": run.id,
                    "portal_user_id": user_id,
                    "code": refusal.code,
                    "detail": refusal.detail,
                }
                for user_id, refusal in refused.items()
            ],
        )
    session.execute(
        update(BulkRun)
        .where(BulkRun.id == run.id)
        .values(sent=BulkRun.sent + len(done), failed=BulkRun.failed + len(refused))
        .execution_options(synchronize_session=False)
    )
    chunk.status = ChunkStatus.EXPANDED
    session.flush()
    bulk.finish_if_done(session, [run.id])
    return invitations


def _transition(
    session: Session, run: BulkRun, user_ids: Sequence[int], now: datetime
) -> tuple[list[int], dict[int, Refusal], list[int]]:
    user_ids, refused = _of_the_type(session, run, user_ids)
    if run.action == BulkAction.ACTIVATE:
        user_ids, over_limit = _within_licences(session, run, user_ids)
        refused.update(over_limit)
    result = lifecycle.transition_many(session, run.org_id, user_ids, ACTIONS[run.action], now)
    result.refused.update(refused)
    invitations: list[int] = []
    if run.action == BulkAction.REMOVE and result.moved:
        _revoke_live_tokens(session, result.moved, now)
    if run.action == BulkAction.ACTIVATE:
        # An email change held while the user was deactivated goes out now.
        for user_id in result.moved:
            invitation_id = address_changes.after_activation(session, user_id, now)
            if invitation_id is not None:
                invitations.append(invitation_id)
    return result.moved, result.refused, invitations


def _of_the_type(
    session: Session, run: BulkRun, user_ids: Sequence[int]
) -> tuple[list[int], dict[int, Refusal]]:
    """A run acts on its own user type's users; anyone else is refused by name."""
    theirs = set(
        session.scalars(
            select(PortalUser.id).where(
                PortalUser.id.in_(list(user_ids)), PortalUser.user_type_id == run.user_type_id
            )
        )
    )
    refused = {
        user_id: Refusal(
            RefusalCode.OTHER_USER_TYPE,
            f"portal user {user_id} is not a user of user type {run.user_type_id}",
        )
        for user_id in user_ids
        if user_id not in theirs
    }
    return [user_id for user_id in user_ids if user_id in theirs], refused


def _within_licences(
    session: Session, run: BulkRun, user_ids: Sequence[int]
) -> tuple[list[int], dict[int, Refusal]]:
    """Activated users hold a licence again: only as many as the type has left."""
    licences.lock_user_type(session, run.user_type_id)
    user_type = session.get_one(PortalUserType, run.user_type_id)
    left = licences.remaining_capacity(session, orgs.get_org(session, run.org_id), user_type)
    returning = set(
        session.scalars(
            select(PortalUser.id).where(
                PortalUser.id.in_(list(user_ids)),
                PortalUser.status == PortalUserStatus.DEACTIVATED,
            )
        )
    )
    allowed: list[int] = []
    refused: dict[int, Refusal] = {}
    why: Refusal | None = None
    for user_id in user_ids:
        if user_id in returning:
            if left <= 0:
                why = why or _no_seat_left(session, run.org_id, user_type.id, user_type.name)
                refused[user_id] = why
                continue
            left -= 1
        allowed.append(user_id)
    return allowed, refused


def _no_seat_left(session: Session, org_id: int, user_type_id: int, name: str) -> Refusal:
    """Why a deactivated user cannot come back: who holds the seats, by status."""
    [seats] = [t for t in seat_usage.seat_usage(session, org_id) if t.user_type_id == user_type_id]
    return Refusal(
        RefusalCode.LICENCE_LIMIT,
        f"{name} has no licence left ({seats.summary()}; "
        f"see portalflow licences usage --org {org_id})",
    )


def _revoke_live_tokens(session: Session, user_ids: Sequence[int], now: datetime) -> None:
    """Removing revokes access: an invitation link sent earlier stops working."""
    session.execute(
        move(
            Transition.SUPERSEDE,
            Invitation.portal_user_id.in_(list(user_ids)),
            has_status(InvitationStatus.SENT),
            values={"updated_at": now},
        )
    )


def _reinvite(
    session: Session, run: BulkRun, user_ids: Sequence[int]
) -> tuple[list[int], dict[int, Refusal], list[int]]:
    """Not-accepted users get the accept email again; login-suspended ones the confirm email."""
    done: list[int] = []
    refused: dict[int, Refusal] = {}
    invitations: list[int] = []
    for user_id in user_ids:
        try:
            with session.begin_nested():
                invitation_id = reinvite.reinvite(
                    session, run.org_id, user_id, inviter_id=run.inviter_id, language=run.language
                )
        except Refused as refusal:
            refused[user_id] = refusal.refusal
            continue
        except NotFound as missing:
            refused[user_id] = Refusal(RefusalCode.UNKNOWN_USER, str(missing))
            continue
        except InvalidInput as refusal:
            refused[user_id] = Refusal(RefusalCode.REFUSED, str(refusal))
            continue
        done.append(user_id)
        invitations.append(invitation_id)
    return done, refused, invitations
