"""SMS invitations in India: org-wide templates, the DLT registry, and their mappings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .enums import DltTemplateStatus, SmsTemplateKind, VerificationStatus
from .types import UTCDateTime, enum_column, utcnow


class SmsTemplate(Base):
    """One version of an org's SMS text for a kind.

    A kind has at most two rows: the one in use (its mapping approved) and an edit
    awaiting approval. Approving the edit's mapping deletes the older row.
    """

    __tablename__ = "sms_templates"
    __table_args__ = (Index("ix_sms_templates_org_kind", "org_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    kind: Mapped[SmsTemplateKind] = mapped_column(enum_column(SmsTemplateKind))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DltTemplate(Base):
    """A template as registered on a DLT operator portal, imported from its export."""

    __tablename__ = "dlt_templates"
    __table_args__ = (UniqueConstraint("org_id", "template_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    # All-digit strings, 12 to 19 digits: never numbers (a float would round them).
    template_id: Mapped[str] = mapped_column(String(19))
    entity_id: Mapped[str | None] = mapped_column(String(19))
    name: Mapped[str | None] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    header: Mapped[str | None] = mapped_column(String(20))
    content_type: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[DltTemplateStatus] = mapped_column(enum_column(DltTemplateStatus))
    variable_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsTemplateMapping(Base):
    """An SMS template paired with the DLT template it must match, and its verification."""

    __tablename__ = "sms_template_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    sms_template_id: Mapped[int] = mapped_column(
        ForeignKey("sms_templates.id", ondelete="CASCADE"), unique=True
    )
    dlt_template_id: Mapped[int] = mapped_column(ForeignKey("dlt_templates.id"))
    verification: Mapped[VerificationStatus] = mapped_column(
        enum_column(VerificationStatus), default=VerificationStatus.PENDING
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
