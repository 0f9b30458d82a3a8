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


class SweepMark(Base):
    """How far a periodic sweep has reached: the next one starts there, not at the start.

    ``reached`` is the point in the sweep's order (for ``expiry``, ``expires_at``) before
    which the last sweep left nothing to do. One row per sweep.
    """

    __tablename__ = "sweep_marks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    reached: Mapped[datetime] = mapped_column(UTCDateTime)
