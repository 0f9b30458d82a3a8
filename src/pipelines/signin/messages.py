"""The sign-in messages as invitation rows: written here, sent by ``dispatch``.

A verification SMS (kind ``sign_in_code``), a forgot-password SMS or a reset-password
email (kind ``reset_password``) is a queued ``invitations`` row for the user, so it takes
the one dispatch path every invitation takes: claim, receipt, outcomes, the send-rate
limiter, credits, suppression on a hard bounce, the failure reports. The secret (the code,
the reset token) is issued when the row is claimed and only its hash is stored; the
lifetime (``tokens.lifetime``) runs from the send. A new message of a kind supersedes the
user's older one of that kind, so only the newest code or link works. An address that is
suppressed gets a ``failed`` row with ``suppressed`` and nothing is sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    Channel,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    ReasonCode,
)
from portalflow.pipelines.content.rendering import FALLBACK_LANGUAGE, SUPPORTED_LANGUAGES
from portalflow.pipelines.invitations import suppressions
from portalflow.pipelines.invitations.invitation_states import Transition, initial_status, move_ids


def queue_message(
    session: Session, user: PortalUser, kind: EmailKind, channel: Channel, now: datetime
) -> int | None:
    """Write the message row (flushed); its id to dispatch, or None when it was refused."""
    address = user.phone if channel == Channel.SMS else user.email
    assert address, "the caller picks users with an address for the channel"
    record = session.get_one(CrmRecord, user.record_id)
    suppressed = bool(suppressions.suppressed_among(session, user.org_id, channel, [address]))
    transition = Transition.REFUSE if suppressed else Transition.ENQUEUE
    language = user.language if user.language in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE
    row = Invitation(
        org_id=user.org_id,
        user_type_id=user.user_type_id,
        crm_id=record.crm_id,
        record_id=record.id,
        portal_user_id=user.id,
        kind=kind,
        channel=channel,
        language=language,
        address=address,
        status=initial_status(transition),
        failure_code=ReasonCode.SUPPRESSED.value if suppressed else None,
        failure_detail=(
            f"{channel.value} to this address is suppressed; a {kind.value} message was not sent"
            if suppressed
            else None
        ),
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    if suppressed:
        return None
    older = list(
        session.scalars(
            select(Invitation.id).where(
                Invitation.portal_user_id == user.id,
                Invitation.kind == kind,
                Invitation.status.in_((InvitationStatus.QUEUED, InvitationStatus.SENT)),
                Invitation.id != row.id,
            )
        )
    )
    if older:
        # Queued or sent ones die; one being sent right now is left to finish.
        session.execute(
            move_ids(
                Transition.SUPERSEDE, older, values={"superseded_by_id": row.id, "updated_at": now}
            )
        )
    return row.id
