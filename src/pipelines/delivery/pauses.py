"""Channels paused for an org because our side is misconfigured: the admin's alert."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from portalflow.models import Channel, ChannelPause, Invitation, InvitationStatus, utcnow
from portalflow.pipelines.errors import NotFound
from portalflow.pipelines.invitations.invitation_states import has_status
from portalflow.pipelines.tenancy import orgs


def pause(session: Session, org_id: int, channel: Channel, code: str, detail: str) -> bool:
    """Pause a channel for an org (idempotent); True if it was running until now."""
    if active_pause(session, org_id, channel) is not None:
        return False
    with session.begin_nested():
        session.add(ChannelPause(org_id=org_id, channel=channel, code=code, detail=detail))
    return True


def active_pause(session: Session, org_id: int, channel: Channel) -> ChannelPause | None:
    return session.scalar(
        select(ChannelPause).where(
            ChannelPause.org_id == org_id,
            ChannelPause.channel == channel,
            ChannelPause.resumed_at.is_(None),
        )
    )


def not_paused() -> ColumnElement[bool]:
    """A condition on Invitation: its org's channel is not paused (for the claim)."""
    return ~exists().where(
        ChannelPause.org_id == Invitation.org_id,
        ChannelPause.channel == Invitation.channel,
        ChannelPause.resumed_at.is_(None),
    )


def resume(
    session: Session, org_id: int, channel: Channel, now: datetime | None = None
) -> list[int]:
    """Lift the pause once the admin fixed the setup; returns the queued ids to send now."""
    orgs.get_org(session, org_id)
    result = session.execute(
        update(ChannelPause)
        .where(
            ChannelPause.org_id == org_id,
            ChannelPause.channel == channel,
            ChannelPause.resumed_at.is_(None),
        )
        .values(resumed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"the {channel.value} channel of org {org_id} is not paused")
    return list(
        session.scalars(
            select(Invitation.id).where(
                Invitation.org_id == org_id,
                Invitation.channel == channel,
                has_status(InvitationStatus.QUEUED),
            )
        )
    )


def paused(session: Session, org_id: int | None = None) -> list[ChannelPause]:
    query = select(ChannelPause).where(ChannelPause.resumed_at.is_(None))
    if org_id is not None:
        query = query.where(ChannelPause.org_id == org_id)
    return list(session.scalars(query.order_by(ChannelPause.paused_at)))
