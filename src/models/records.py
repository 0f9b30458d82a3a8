"""The CRM records portal users belong to, as the CRM last told us about them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .types import UTCDateTime, utcnow

CONSENT_BASIS = "consent"


class CrmRecord(Base):
    """A Contact, Lead, Vendor or custom-module record, keyed by the CRM's own id."""

    __tablename__ = "crm_records"
    __table_args__ = (
        UniqueConstraint("org_id", "crm_id"),
        Index("ix_crm_records_org_module", "org_id", "module"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    crm_id: Mapped[str] = mapped_column(String(64))
    module: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("crm_users.id"))
    approval_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    review_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    # GDPR processing basis ("consent", "contract", ...); None when GDPR is not in use.
    processing_basis: Mapped[str | None] = mapped_column(String(40))
    consent_given: Mapped[bool] = mapped_column(Boolean, default=False)
    in_recycle_bin: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Any other field the CRM sends, usable as a merge field or an invitation field.
    fields: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def field_value(self, name: str) -> Any:
        """The value of a named field: a column if there is one, else an extra field."""
        if name in RECORD_COLUMNS:
            return getattr(self, name)
        return (self.fields or {}).get(name)

    def merge_fields(self) -> dict[str, Any]:
        """Plain values for templates (never the ORM object itself)."""
        values = dict(self.fields or {})
        values.update({name: getattr(self, name) for name in MERGEABLE_COLUMNS})
        return values


MERGEABLE_COLUMNS = ("crm_id", "module", "first_name", "last_name", "email", "phone")
RECORD_COLUMNS = frozenset(MERGEABLE_COLUMNS)
