"""Idempotency keys of the admin API: the first answer to a request, kept for its replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CHAR, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .types import UTCDateTime, utcnow


class IdempotencyKey(Base):
    """One ``Idempotency-Key`` of an org: what the request was and what it was answered."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("org_id", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, path and canonical body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(CHAR(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
