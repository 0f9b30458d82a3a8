"""An address change's invitations: the open ones superseded, one new to the new address.

Every change supersedes the user's open invitations (queued or sent and live), so no token
sent to the old address still works; a queued one of a bulk run leaves the run's in-flight
count, so the run can still complete. An invitation being sent at that very moment makes
the change wait (:class:`InvitationInFlight`: the caller retries).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    Channel,
    CrmRecord,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    WebhookEventType,
)
from portalflow.pipelines.content.rendering import FALLBACK_LANGUAGE, SUPPORTED_LANGUAGES
from portalflow.pipelines.crm_webhooks import outbox
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.invitations.invitation_states import Transition, initial_status, move_ids

# Open invitations an address change kills: not sent yet (queued), or sent and live.
SUPERSEDABLE = (InvitationStatus.QUEUED, InvitationStatus.SENT)


class InvitationInFlight(RuntimeError):
    """An invitation of the user is being sent right now; apply the change a bit later.

    Not a PortalflowError: nothing is wrong with the event, so the actor's retries (with
    backoff) run it again once the send has finished or its claim has expired.
    """


def open_invitations(session: Session, user: PortalUser) -> Sequence[Invitation]:
    """The user's queued, sending and sent invitations, locked against a concurrent claim."""
    return session.scalars(
        select(Invitation)
        .where(
            Invitation.portal_user_id == user.id,
            Invitation.status.in_((*SUPERSEDABLE, InvitationStatus.SENDING)),
        )
        .order_by(Invitation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def refuse_if_sending(session: Session, user: PortalUser) -> None:
    sending = [
        i.id for i in open_invitations(session, user) if i.status == InvitationStatus.SENDING
    ]
    if sending:
        raise InvitationInFlight(
            f"invitation {sending[0]} to portal user {user.id} is being sent; try again later"
        )


def reinvite_to_new_address(
    session: Session,
    user: PortalUser,
    record: CrmRecord,
    kind: EmailKind,
    channel: Channel,
    now: datetime,
) -> int:
    """A new queued invitation to the user's current address; the older ones superseded."""
    language = user.language if user.language in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE
    invitation = Invitation(
        org_id=user.org_id,
        user_type_id=user.user_type_id,
        bulk_run_id=None,
        crm_id=record.crm_id,
        record_id=record.id,
        portal_user_id=user.id,
        kind=kind,
        channel=channel,
        language=language,
        address=user.phone if channel == Channel.SMS else user.email,
        status=initial_status(Transition.ENQUEUE),
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(invitation)
    session.flush()
    supersede_open(session, user, invitation.id, now)
    outbox.invitation_events(
        session, WebhookEventType.INVITATION_QUEUED, [invitation.id], org_id=user.org_id, now=now
    )
    return invitation.id


def supersede_open(session: Session, user: PortalUser, by_id: int | None, now: datetime) -> None:
    """Kill the user's queued and sent invitations (except ``by_id``); fix their runs' totals.

    A queued invitation of a bulk run leaves the run's in-flight count, so the run can
    still complete.
    """
    stale = [i for i in open_invitations(session, user) if i.id != by_id]
    if not stale:
        return
    for invitation in stale:
        assert invitation.status != InvitationStatus.SENDING  # refuse_if_sending ran first
        if invitation.status == InvitationStatus.QUEUED and invitation.bulk_run_id is not None:
            session.execute(
                update(BulkRun)
                .where(BulkRun.id == invitation.bulk_run_id)
                .values(queued=BulkRun.queued - 1)
                .execution_options(synchronize_session=False)
            )
    session.execute(
        move_ids(
            Transition.SUPERSEDE,
            [invitation.id for invitation in stale],
            values={"superseded_by_id": by_id, "updated_at": now},
        )
    )
    for invitation in stale:
        session.expire(invitation)  # the UPDATE went around the ORM
    run_ids = {i.bulk_run_id for i in stale if i.bulk_run_id is not None}
    if run_ids:
        bulk.finish_if_done(session, run_ids)
