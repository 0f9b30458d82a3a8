"""Portal users: CRM records invited into a user type."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .enums import PortalUserStatus
from .types import UTCDateTime, enum_column, utcnow


class PortalUser(Base):
    """One per CRM record, ever: a removed user is re-invited by reusing the row."""

    __tablename__ = "portal_users"
    __table_args__ = (Index("ix_portal_users_type_status", "user_type_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("crm_records.id"), unique=True)
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    status: Mapped[PortalUserStatus] = mapped_column(enum_column(PortalUserStatus))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("crm_users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the user accepts: a scrypt hash, never the password; locale from acceptance.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(10))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    time_format: Mapped[str | None] = mapped_column(String(8))  # "12h" or "24h"
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    # An email change that reached a deactivated user: confirmed when they are activated.
    pending_email: Mapped[str | None] = mapped_column(String(320))
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
