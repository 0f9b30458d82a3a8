"""What happens after the send: raw provider events, suppressed addresses, paused channels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .enums import Channel, ProviderEventStatus
from .types import UTCDateTime, enum_column, utcnow


class ProviderEvent(Base):
    """A provider's webhook call, stored as received before anything interprets it."""

    __tablename__ = "provider_events"
    __table_args__ = (Index("ix_provider_events_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))  # "ses" or "twilio"
    # The provider's own id for the event (SNS MessageId; Twilio sid + status): one row each.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[ProviderEventStatus] = mapped_column(
        enum_column(ProviderEventStatus), default=ProviderEventStatus.RECEIVED
    )
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Suppression(Base):
    """An address or number no invitation goes to until an admin clears it."""

    __tablename__ = "suppressions"
    __table_args__ = (
        Index(
            "uq_suppressions_active",
            "org_id",
            "channel",
            "address",
            unique=True,
            postgresql_where=text("cleared_at IS NULL"),
            sqlite_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    # Lower-cased email, or E.164 number.
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(64))  # the outcome code that suppressed it
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChannelPause(Base):
    """A channel stopped for one org because our side is misconfigured; an alert for admins."""

    __tablename__ = "channel_pauses"
    __table_args__ = (
        Index(
            "uq_channel_pauses_active",
            "org_id",
            "channel",
            unique=True,
            postgresql_where=text("resumed_at IS NULL"),
            sqlite_where=text("resumed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    code: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
