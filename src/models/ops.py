"""The ops page's history: one number per minute, series and label (bounded retention)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .types import UTCDateTime


class OpsSample(Base):
    """A per-minute value, e.g. ``("sent", "invitations:email")`` or ``("ready", "invitations")``.

    Written by the ops sampler once a minute and deleted after its retention (25 hours), so
    the table stays a few tens of thousands of rows whatever the traffic.
    """

    __tablename__ = "ops_samples"
    __table_args__ = (UniqueConstraint("at", "series", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # the minute the value is for (UTC)
    series: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(120), default="")
    value: Mapped[float] = mapped_column(Float)
