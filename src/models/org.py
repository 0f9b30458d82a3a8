"""The tenant side: org, its portal, its portal user types and its CRM users."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONDocument
from .enums import DataCentre, Edition, InvitationPreference, RecordAccess
from .types import UTCDateTime, enum_column, utcnow

CLIENT_PORTAL_NAME = "Client Portal"
CLIENT_PORTAL_MODULE = "Contacts"


class Org(Base):
    """One CRM account (company)."""

    __tablename__ = "orgs"
    __table_args__ = (CheckConstraint("sms_credits >= 0", name="sms_credits_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    company_domain: Mapped[str] = mapped_column(String(253))
    edition: Mapped[Edition] = mapped_column(enum_column(Edition), default=Edition.FREE)
    data_centre: Mapped[DataCentre] = mapped_column(enum_column(DataCentre), default=DataCentre.US)
    country: Mapped[str] = mapped_column(String(2))
    default_from_email: Mapped[str | None] = mapped_column(String(254))
    default_from_name: Mapped[str | None] = mapped_column(String(200))
    default_reply_to: Mapped[str | None] = mapped_column(String(254))
    # The Notification SMS integration: credits (one per segment) and the DLT sender id.
    sms_credits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sms_sender_id: Mapped[str | None] = mapped_column(String(11))
    # Licences: when the trial began, who hears licence alerts, at what use, at what price.
    trial_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    admin_email: Mapped[str | None] = mapped_column(String(254))
    near_limit_percent: Mapped[int] = mapped_column(Integer, default=90, server_default="90")
    # None: the standard price list; else [{"up_to": N | None, "cents": C}, ...].
    price_slabs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDocument)
    deletion_scheduled_for: Mapped[date | None] = mapped_column(Date)
    # Invitation email branding: an https logo URL, and a footer (address, support contact).
    logo_url: Mapped[str | None] = mapped_column(String(2000))
    email_footer: Mapped[str | None] = mapped_column(Text)
    # Compare an SMS with its DLT template ignoring whitespace differences.
    sms_whitespace_tolerant: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    portal: Mapped[Portal | None] = relationship(back_populates="org", uselist=False)
    user_types: Mapped[list[PortalUserType]] = relationship(back_populates="org")


class Portal(Base):
    __tablename__ = "portals"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Org] = relationship(back_populates="portal")


class PortalUserType(Base):
    """A label plus configuration (Customers, Vendors, ...): one module, one invitation channel."""

    __tablename__ = "portal_user_types"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        # At most one Client Portal per org.
        Index(
            "uq_portal_user_types_client_portal",
            "org_id",
            unique=True,
            postgresql_where=text("is_client_portal"),
            sqlite_where=text("is_client_portal"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    module: Mapped[str] = mapped_column(String(100))
    invitation_preference: Mapped[InvitationPreference] = mapped_column(
        enum_column(InvitationPreference), default=InvitationPreference.EMAIL
    )
    invitation_field: Mapped[str] = mapped_column(String(100), default="email")
    is_client_portal: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The Contacts type converted leads go to when several could take them.
    conversion_default: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Licence holders as last counted by the nightly reconciliation.
    holders_cached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by "transfer and delete": every user is being moved there, then this type goes.
    transfer_to_id: Mapped[int | None] = mapped_column(ForeignKey("portal_user_types.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Org] = relationship(back_populates="user_types")


class CrmUser(Base):
    """A CRM user who invites portal users; owner of what those users create."""

    __tablename__ = "crm_users"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    # Module names this user may work with, e.g. ["Contacts", "Leads"].
    module_permissions: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    record_access: Mapped[RecordAccess] = mapped_column(
        enum_column(RecordAccess), default=RecordAccess.ALL
    )
    language: Mapped[str] = mapped_column(String(10), default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    time_format: Mapped[str] = mapped_column(String(8), default="12h", server_default="12h")
    country: Mapped[str | None] = mapped_column(String(2))  # unset: the org's country
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
