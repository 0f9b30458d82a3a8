"""What an admin reads about portal users: which record each is, every invitation attempt,
and whether the user holds a licence seat (the rule is ``licences.NON_HOLDING_STATUSES``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, Invitation, PortalUser, PortalUserType
from portalflow.pipelines.errors import NotFound
from portalflow.pipelines.licensing import seat_usage
from portalflow.pipelines.licensing.licences import NON_HOLDING_STATUSES

from .lifecycle import UserFilter, users_query


def list_users(
    session: Session,
    org_id: int,
    user_filter: UserFilter = UserFilter.ALL,
    user_type_id: int | None = None,
) -> list[dict[str, Any]]:
    """The users a Users-tab filter shows, oldest first, each with its record's CRM id and name."""
    query = (
        users_query(org_id, user_filter, user_type_id)
        .add_columns(CrmRecord.crm_id, CrmRecord.first_name, CrmRecord.last_name)
        .join(CrmRecord, CrmRecord.id == PortalUser.record_id)
    )
    rows = session.execute(query).all()
    expired = seat_usage.expired_invitees(session, [row[0].id for row in rows])
    return [
        _user_summary(user, crm_id, _name(first, last), user.id in expired)
        for user, crm_id, first, last in rows
    ]


def user_history(session: Session, user_id: int, *, org_id: int | None = None) -> dict[str, Any]:
    """A portal user with every invitation attempt for its record, oldest first, and its seat."""
    row = session.execute(
        select(PortalUser, CrmRecord, PortalUserType.name)
        .join(CrmRecord, CrmRecord.id == PortalUser.record_id)
        .join(PortalUserType, PortalUserType.id == PortalUser.user_type_id)
        .where(PortalUser.id == user_id)
    ).first()
    if row is None or (org_id is not None and row[0].org_id != org_id):
        where = f" in org {org_id}" if org_id is not None else ""
        raise NotFound(f"portal user {user_id} does not exist{where}")
    user, record, type_name = row
    # Attempts refused before the user existed name only the record.
    attempts = session.scalars(
        select(Invitation)
        .where(
            Invitation.org_id == user.org_id,
            or_(Invitation.portal_user_id == user.id, Invitation.record_id == record.id),
        )
        .order_by(Invitation.created_at, Invitation.id)
    )
    expired = bool(seat_usage.expired_invitees(session, [user.id]))
    name = _name(record.first_name, record.last_name)
    summary = _user_summary(user, record.crm_id, name, expired)
    return summary | {
        "user_type": type_name,
        # An invitee whose invitation expired keeps its seat (see seat_usage).
        "holds_licence_seat": user.status not in NON_HOLDING_STATUSES,
        "status_changed_at": _iso(user.status_changed_at),
        "invitations": [_attempt(invitation) for invitation in attempts],
    }


def _user_summary(
    user: PortalUser, crm_id: str, name: str | None, expired: bool = False
) -> dict[str, Any]:
    return {
        "id": user.id,
        "org_id": user.org_id,
        "user_type_id": user.user_type_id,
        "crm_id": crm_id,
        "name": name,
        "status": seat_usage.display_status(user.status, expired),
        "email": user.email,
        "phone": user.phone,
        "confirmed_at": _iso(user.confirmed_at),
    }


def _attempt(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "bulk_run_id": invitation.bulk_run_id,
        "created_at": _iso(invitation.created_at),
        "sent_at": _iso(invitation.sent_at),
        "kind": invitation.kind.value,
        "channel": invitation.channel.value,
        "address": invitation.address,
        "status": invitation.status.value,
        "attempts": invitation.attempts,
        "provider_message_id": invitation.provider_message_id,
        "failure_code": invitation.failure_code,
        "failure_detail": invitation.failure_detail,
        "outcome": invitation.outcome_class.value if invitation.outcome_class else None,
        "outcome_code": invitation.outcome_code,
        "outcome_at": _iso(invitation.outcome_at),
    }


def _name(first: str | None, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part) or None


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
