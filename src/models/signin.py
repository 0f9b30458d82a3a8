"""Portal sessions: one row per sign-in, found by the SHA-256 of its opaque token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CHAR, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .enums import SessionEndReason, SignInMethod
from .types import UTCDateTime, enum_column, utcnow


class PortalSession(Base):
    """A signed-in portal user: live while ``ended_at`` is empty and ``expires_at`` is ahead.

    The token itself is never stored, only its hash; ending a session (logout, a status
    change, a password reset, an admin) sets ``ended_at`` and the reason, and keeps the row
    so an admin can see what happened.
    """

    __tablename__ = "portal_sessions"
    __table_args__ = (
        # Partial: revocation and the admin's list look only for the live ones of a user.
        Index(
            "ix_portal_sessions_user_live",
            "portal_user_id",
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    portal_user_id: Mapped[int] = mapped_column(ForeignKey("portal_users.id"))
    # SHA-256 of the session token, hex.
    token_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    method: Mapped[SignInMethod] = mapped_column(enum_column(SignInMethod))
    client_ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[SessionEndReason | None] = mapped_column(enum_column(SessionEndReason))
