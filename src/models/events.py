"""Events the CRM sends us (an email changed, a lead converted), each handled once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .enums import CrmEventKind, CrmEventStatus
from .types import UTCDateTime, enum_column, utcnow


class CrmEvent(Base):
    """One CRM event, keyed by the CRM's own event id: the same key twice is one event."""

    __tablename__ = "crm_events"
    __table_args__ = (UniqueConstraint("org_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    kind: Mapped[CrmEventKind] = mapped_column(enum_column(CrmEventKind))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[CrmEventStatus] = mapped_column(
        enum_column(CrmEventStatus), default=CrmEventStatus.RECEIVED
    )
    # A stable code when it failed (e.g. user_type_choice_required); free text in detail.
    result_code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
