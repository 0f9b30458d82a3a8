"""The portal user's state machine, in one place: every transition named, the rest refused.

    invited ──accept──▶ confirmed ──suspend_login──▶ login_suspended ──confirm_email──▶ confirmed
    confirmed / login_suspended ──deactivate──▶ deactivated ──activate──▶ confirmed
    any ──remove──▶ removed ──invite_again──▶ invited
    invited / login_suspended ──reinvite──▶ (same status, a new invitation)
    confirmed / login_suspended / deactivated ──transfer──▶ (same status, another type)

Suspend login, deactivate, remove and transfer end the user's portal sessions
(:data:`ENDS_SESSIONS`), in the same statement batch as the status write.

The spec's filters (All, Active, Confirmed, Unconfirmed: not accepted / login suspended,
Deactivated) are queries over the status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    PortalUser,
    PortalUserStatus,
    Refusal,
    RefusalCode,
    SessionEndReason,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.errors import InvalidInput, Refused
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.signin import sessions as portal_sessions
from portalflow.pipelines.tenancy.orgs import get_user_type

S = PortalUserStatus


class Action(StrEnum):
    ACCEPT = "accept"
    CONFIRM_EMAIL = "confirm_email"
    SUSPEND_LOGIN = "suspend_login"  # the email changed: confirm the new one to log in again
    DEACTIVATE = "deactivate"
    ACTIVATE = "activate"
    REMOVE = "remove"
    INVITE_AGAIN = "invite_again"
    REINVITE = "reinvite"
    TRANSFER = "transfer"


TRANSITIONS: dict[tuple[PortalUserStatus, Action], PortalUserStatus] = {
    (S.INVITED, Action.ACCEPT): S.CONFIRMED,
    (S.CONFIRMED, Action.SUSPEND_LOGIN): S.LOGIN_SUSPENDED,
    (S.LOGIN_SUSPENDED, Action.SUSPEND_LOGIN): S.LOGIN_SUSPENDED,  # changed again
    (S.LOGIN_SUSPENDED, Action.CONFIRM_EMAIL): S.CONFIRMED,
    (S.CONFIRMED, Action.DEACTIVATE): S.DEACTIVATED,
    (S.LOGIN_SUSPENDED, Action.DEACTIVATE): S.DEACTIVATED,
    (S.DEACTIVATED, Action.ACTIVATE): S.CONFIRMED,
    (S.INVITED, Action.REMOVE): S.REMOVED,
    (S.CONFIRMED, Action.REMOVE): S.REMOVED,
    (S.LOGIN_SUSPENDED, Action.REMOVE): S.REMOVED,
    (S.DEACTIVATED, Action.REMOVE): S.REMOVED,
    (S.REMOVED, Action.INVITE_AGAIN): S.INVITED,
    (S.INVITED, Action.REINVITE): S.INVITED,
    (S.LOGIN_SUSPENDED, Action.REINVITE): S.LOGIN_SUSPENDED,
    (S.CONFIRMED, Action.TRANSFER): S.CONFIRMED,
    (S.LOGIN_SUSPENDED, Action.TRANSFER): S.LOGIN_SUSPENDED,
    (S.DEACTIVATED, Action.TRANSFER): S.DEACTIVATED,
}


# What the CRM's webhooks hear when an action changes a user's status.
EVENTS: dict[Action, WebhookEventType] = {
    Action.ACCEPT: WebhookEventType.USER_CONFIRMED,
    Action.CONFIRM_EMAIL: WebhookEventType.USER_CONFIRMED,
    Action.SUSPEND_LOGIN: WebhookEventType.USER_SUSPENDED,
    Action.DEACTIVATE: WebhookEventType.USER_DEACTIVATED,
    Action.ACTIVATE: WebhookEventType.USER_ACTIVATED,
    Action.REMOVE: WebhookEventType.USER_REMOVED,
}


# The actions that end the user's portal sessions (sign-in needs a confirmed user).
ENDS_SESSIONS: dict[Action, SessionEndReason] = {
    Action.SUSPEND_LOGIN: SessionEndReason.LOGIN_SUSPENDED,
    Action.DEACTIVATE: SessionEndReason.DEACTIVATED,
    Action.REMOVE: SessionEndReason.REMOVED,
    Action.TRANSFER: SessionEndReason.TRANSFERRED,
}


def end_sessions(
    session: Session, user_ids: Sequence[int], action: Action, now: datetime | None = None
) -> None:
    """End the sessions of users ``action`` moved, when it is one that revokes access."""
    if action in ENDS_SESSIONS and user_ids:
        portal_sessions.end_for_users(session, user_ids, ENDS_SESSIONS[action], now)


class InvalidTransition(Refused):
    """The action is not allowed from the user's status; nothing was changed."""

    def __init__(self, user_id: int | None, status: PortalUserStatus, action: Action) -> None:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == status)
        who = f"portal user {user_id}" if user_id is not None else "a portal user"
        super().__init__(
            RefusalCode.INVALID_TRANSITION,
            f"cannot {action.value} {who}: it is {status.value}"
            f" (allowed: {', '.join(allowed) or 'nothing'})",
        )
        self.status = status
        self.action = action


def next_status(status: PortalUserStatus, action: Action, user_id: int | None = None) -> S:
    """The status ``action`` leads to from ``status``, or InvalidTransition."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(user_id, status, action) from None


def transition(
    session: Session, user: PortalUser, action: Action, now: datetime | None = None
) -> PortalUserStatus:
    """Move one user (flushed); refused transitions raise and change nothing."""
    target = next_status(user.status, action, user.id)
    crossed = licences.is_holding(user.status) != licences.is_holding(target)
    changed = target != user.status
    if changed:
        user.status = target
        user.status_changed_at = now or utcnow()
    session.flush()
    end_sessions(session, [user.id], action, now)
    if crossed:
        licences.sync_holders(session, [user.user_type_id])
    if changed and action in EVENTS:
        outbox.user_events(session, EVENTS[action], [user.id], org_id=user.org_id, now=now)
    return target


def unknown_user(user_id: int, org_id: int) -> Refusal:
    """The refusal of an id that names no portal user of the org."""
    return Refusal(
        RefusalCode.UNKNOWN_USER, f"portal user {user_id} does not exist in org {org_id}"
    )


@dataclass
class BulkTransition:
    """The outcome of one action over many users."""

    moved: list[int] = field(default_factory=list)
    refused: dict[int, Refusal] = field(default_factory=dict)  # user id -> why


def transition_many(
    session: Session,
    org_id: int,
    user_ids: Sequence[int],
    action: Action,
    now: datetime | None = None,
) -> BulkTransition:
    """Apply ``action`` to every user it is allowed for: one SELECT, one UPDATE per status."""
    now = now or utcnow()
    result = BulkTransition()
    rows = session.execute(
        select(PortalUser.id, PortalUser.status, PortalUser.user_type_id)
        .where(PortalUser.org_id == org_id, PortalUser.id.in_(list(user_ids)))
        .with_for_update()
    ).all()
    found = {row.id: row.status for row in rows}
    types_of = {row.id: row.user_type_id for row in rows}
    crossing: set[int] = set()
    changed: list[int] = []
    by_target: dict[PortalUserStatus, list[int]] = {}
    for user_id in user_ids:
        status = found.get(user_id)
        if status is None:
            result.refused[user_id] = unknown_user(user_id, org_id)
        elif (status, action) not in TRANSITIONS:
            result.refused[user_id] = InvalidTransition(user_id, status, action).refusal
        else:
            target = TRANSITIONS[(status, action)]
            by_target.setdefault(target, []).append(user_id)
            if target != status:
                changed.append(user_id)
            if licences.is_holding(status) != licences.is_holding(target):
                crossing.add(types_of[user_id])
    for target, ids in by_target.items():
        session.execute(
            update(PortalUser)
            .where(PortalUser.id.in_(ids))
            .values(status=target, status_changed_at=now, updated_at=now)
            # Keep users already loaded in this session in step with the rows.
            .execution_options(synchronize_session="evaluate")
        )
        result.moved.extend(ids)
    end_sessions(session, result.moved, action, now)
    licences.sync_holders(session, crossing)
    if action in EVENTS:
        outbox.user_events(session, EVENTS[action], changed, org_id=org_id, now=now)
    return result


def transition_from(
    session: Session,
    user_ids: Sequence[int],
    status: PortalUserStatus,
    action: Action,
    now: datetime | None = None,
) -> list[int]:
    """Apply ``action`` to those of ``user_ids`` that are ``status`` now: one UPDATE.

    For the pipelines' own follow-ups (a first invitation that failed for good frees its
    invited user): users in any other status are left as they are. Returns the ids moved.
    """
    if not user_ids:
        return []
    target = next_status(status, action)
    now = now or utcnow()
    moved = session.execute(
        update(PortalUser)
        .where(PortalUser.id.in_(list(user_ids)), PortalUser.status == status)
        .values(status=target, status_changed_at=now, updated_at=now)
        .returning(PortalUser.id, PortalUser.user_type_id)
        .execution_options(synchronize_session=False)
    ).all()
    end_sessions(session, [row.id for row in moved], action, now)
    if licences.is_holding(status) != licences.is_holding(target):
        licences.sync_holders(session, {row.user_type_id for row in moved})
    if action in EVENTS and target != status:
        outbox.user_events(session, EVENTS[action], [row.id for row in moved], now=now)
    return [row.id for row in moved]


class UserFilter(StrEnum):
    """The spec's filters of a user type's Users tab."""

    ALL = "all"
    ACTIVE = "active"
    CONFIRMED = "confirmed"
    UNCONFIRMED = "unconfirmed"
    NOT_ACCEPTED = "not_accepted"  # unconfirmed: invitation not yet accepted
    LOGIN_SUSPENDED = "login_suspended"  # unconfirmed: address changed, not confirmed yet
    DEACTIVATED = "deactivated"


FILTER_STATUSES: dict[UserFilter, tuple[PortalUserStatus, ...]] = {
    UserFilter.ALL: (S.INVITED, S.CONFIRMED, S.LOGIN_SUSPENDED, S.DEACTIVATED),
    UserFilter.ACTIVE: (S.CONFIRMED, S.LOGIN_SUSPENDED),
    UserFilter.CONFIRMED: (S.CONFIRMED,),
    UserFilter.UNCONFIRMED: (S.INVITED, S.LOGIN_SUSPENDED),
    UserFilter.NOT_ACCEPTED: (S.INVITED,),
    UserFilter.LOGIN_SUSPENDED: (S.LOGIN_SUSPENDED,),
    UserFilter.DEACTIVATED: (S.DEACTIVATED,),
}


def matching(user_filter: UserFilter) -> ColumnElement[bool]:
    return PortalUser.status.in_(FILTER_STATUSES[user_filter])


def users_query(
    org_id: int, user_filter: UserFilter = UserFilter.ALL, user_type_id: int | None = None
) -> Select[tuple[PortalUser]]:
    """The users of an org (optionally of one type) that a filter shows, oldest first."""
    query = select(PortalUser).where(PortalUser.org_id == org_id, matching(user_filter))
    if user_type_id is not None:
        query = query.where(PortalUser.user_type_id == user_type_id)
    return query.order_by(PortalUser.id)


def user_ids(
    session: Session,
    org_id: int,
    user_filter: UserFilter,
    user_type_id: int | None = None,
    explicit: Iterable[int] | None = None,
) -> list[int]:
    """Targets of a bulk action: the given ids, or everyone the filter shows."""
    if explicit is not None:
        return list(dict.fromkeys(explicit))
    query = users_query(org_id, user_filter, user_type_id).with_only_columns(PortalUser.id)
    return list(session.scalars(query))


def selected_users(
    session: Session,
    org_id: int,
    ids: Iterable[int] | None,
    user_type_id: int | None,
    user_filter: UserFilter | None,
) -> list[int]:
    """Whom an action by ids or by filter is for: ``ids`` when given, else everyone
    ``user_filter`` (default all) shows in ``user_type_id``, which must be the org's."""
    if ids:
        return list(dict.fromkeys(ids))
    if user_type_id is None:
        raise InvalidInput("give user ids, or a user type (with a filter, default all)")
    get_user_type(session, org_id, user_type_id)
    return user_ids(session, org_id, user_filter or UserFilter.ALL, user_type_id)
