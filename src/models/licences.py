"""Portal user licences: purchases with effective dates, daily reports, alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .types import UTCDateTime, utcnow


class LicencePurchase(Base):
    """From ``effective_from`` on, the user type holds ``quantity`` licences (until a later row)."""

    __tablename__ = "licence_purchases"
    __table_args__ = (Index("ix_licence_purchases_type_from", "user_type_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LicenceReport(Base):
    """One org's licence use on one day; reconciling the same day again rewrites it."""

    __tablename__ = "licence_reports"
    __table_args__ = (UniqueConstraint("org_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    day: Mapped[date] = mapped_column(Date)
    edition: Mapped[str] = mapped_column(String(20))
    holders: Mapped[int] = mapped_column(Integer)  # paid types' licence holders
    licences: Mapped[int] = mapped_column(Integer)  # licences in force that day
    monthly_price_cents: Mapped[int] = mapped_column(Integer)
    overage: Mapped[bool] = mapped_column(Boolean)
    trial_expired: Mapped[bool] = mapped_column(Boolean)
    deletion_scheduled_for: Mapped[date | None] = mapped_column(Date)
    counters_corrected: Mapped[int] = mapped_column(Integer, default=0)
    # Per user type: holders, licences, cached counter before the fix, near limit, overage.
    details: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LicenceAlert(Base):
    """Something an org admin must hear about: overage, near the limit, a trial's end."""

    __tablename__ = "licence_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_type_id: Mapped[int | None] = mapped_column(ForeignKey("portal_user_types.id"))
    kind: Mapped[str] = mapped_column(String(30))  # overage, near_limit, trial_expired, ...
    day: Mapped[date] = mapped_column(Date)
    # org:type:kind:day; the same alert is raised once however often a day is reconciled.
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    detail: Mapped[str] = mapped_column(Text)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
