"""The CRM records portal users belong to, as the CRM last told us about them."""

from __future__ import annotations

from dataclasses import dataclass
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
        return _field_value(self, name)

    def merge_fields(self) -> dict[str, Any]:
        """Plain values for templates (never the ORM object itself)."""
        return _merge_fields(self)


MERGEABLE_COLUMNS = ("crm_id", "module", "first_name", "last_name", "email", "phone")
RECORD_COLUMNS = frozenset(MERGEABLE_COLUMNS)


@dataclass(frozen=True, slots=True)
class RecordValues:
    """A record's values read with Core, for the hot path: the same reads as ``CrmRecord``
    without an ORM object (and its identity-map bookkeeping) per record."""

    id: int
    org_id: int
    crm_id: str
    module: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    owner_id: int | None
    approval_locked: bool
    review_locked: bool
    processing_basis: str | None
    consent_given: bool
    in_recycle_bin: bool
    deleted: bool
    fields: dict[str, Any] | None

    def field_value(self, name: str) -> Any:
        """The value of a named field: a column if there is one, else an extra field."""
        return _field_value(self, name)

    def merge_fields(self) -> dict[str, Any]:
        """Plain values for templates."""
        return _merge_fields(self)


# The columns a RecordValues is read from, in its field order.
RECORD_VALUE_COLUMNS = tuple(getattr(CrmRecord, name) for name in RecordValues.__dataclass_fields__)


def _field_value(record: CrmRecord | RecordValues, name: str) -> Any:
    if name in RECORD_COLUMNS:
        return getattr(record, name)
    return (record.fields or {}).get(name)


def _merge_fields(record: CrmRecord | RecordValues) -> dict[str, Any]:
    values = dict(record.fields or {})
    values.update({name: getattr(record, name) for name in MERGEABLE_COLUMNS})
    return values
