"""Inviting an existing, unconfirmed portal user again: the previous token dies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    Channel,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationPreference,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.content.rendering import SUPPORTED_LANGUAGES
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import lifecycle
from portalflow.pipelines.users.lifecycle import Action

from .invitation_states import Transition, has_status, initial_status, move

# Login-suspended users confirm their changed address; not-yet-accepted users accept again.
KIND_FOR_STATUS = {
    PortalUserStatus.INVITED: EmailKind.ACCEPT_INVITATION,
    PortalUserStatus.LOGIN_SUSPENDED: EmailKind.CONFIRM_EMAIL,
}


def reinvite(
    session: Session, org_id: int, portal_user_id: int, *, inviter_id: int, language: str = "en"
) -> int:
    """Write a new queued invitation and supersede the sent one; returns the new id.

    Refused while an earlier invitation is still queued or sending: that one is on its way,
    and superseding it mid-send would leave its bulk run's totals wrong. Flushed, not
    committed: the caller commits, then enqueues the new invitation.
    """
    user = session.get(PortalUser, portal_user_id, with_for_update=True)
    if user is None or user.org_id != org_id:
        raise NotFound(f"portal user {portal_user_id} does not exist in org {org_id}")
    orgs.get_crm_user(session, org_id, inviter_id)
    lifecycle.next_status(user.status, Action.REINVITE, user.id)
    kind = KIND_FOR_STATUS[user.status]
    if language not in SUPPORTED_LANGUAGES:
        raise InvalidInput(f"language {language!r} is not supported")
    user_type = session.get_one(PortalUserType, user.user_type_id)
    by_sms = user_type.invitation_preference == InvitationPreference.PHONE
    address = user.phone if by_sms else user.email
    if not address:
        what = "phone number" if by_sms else "email address"
        raise InvalidInput(f"portal user {portal_user_id} has no {what}")
    _refuse_if_in_flight(session, user)
    record = session.get_one(CrmRecord, user.record_id)
    now = utcnow()
    invitation = Invitation(
        org_id=org_id,
        user_type_id=user.user_type_id,
        crm_id=record.crm_id,
        record_id=record.id,
        portal_user_id=user.id,
        invited_by_id=inviter_id,
        kind=kind,
        channel=Channel.SMS if by_sms else Channel.EMAIL,
        language=language,
        address=address,
        status=initial_status(Transition.ENQUEUE),
        attempts=0,
    )
    session.add(invitation)
    session.flush()
    session.execute(
        move(
            Transition.SUPERSEDE,
            Invitation.portal_user_id == user.id,
            Invitation.id != invitation.id,
            has_status(InvitationStatus.SENT),
            values={"superseded_by_id": invitation.id, "updated_at": now},
        )
    )
    outbox.invitation_events(
        session, WebhookEventType.INVITATION_QUEUED, [invitation.id], org_id=org_id, now=now
    )
    return invitation.id


def _refuse_if_in_flight(session: Session, user: PortalUser) -> None:
    """InvalidInput while an earlier invitation of the user is still queued or sending."""
    in_flight = session.scalar(
        select(Invitation.id).where(
            Invitation.portal_user_id == user.id,
            Invitation.status.in_((InvitationStatus.QUEUED, InvitationStatus.SENDING)),
        )
    )
    if in_flight is not None:
        raise InvalidInput(f"invitation {in_flight} to portal user {user.id} is still being sent")
