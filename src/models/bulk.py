"""Bulk runs: one admin request to invite many records, split into chunks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .enums import BulkAction, BulkRunStatus, ChunkStatus, EmailKind
from .types import UTCDateTime, enum_column, utcnow


class BulkRun(Base):
    """Totals of one invite request; counters move in the same transaction as the rows."""

    __tablename__ = "bulk_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    inviter_id: Mapped[int] = mapped_column(ForeignKey("crm_users.id"))
    kind: Mapped[EmailKind] = mapped_column(enum_column(EmailKind))
    # What the run does to each target: invite records, or act on portal users.
    action: Mapped[BulkAction] = mapped_column(
        enum_column(BulkAction), default=BulkAction.INVITE, server_default="invite"
    )
    language: Mapped[str] = mapped_column(String(10))
    status: Mapped[BulkRunStatus] = mapped_column(
        enum_column(BulkRunStatus), default=BulkRunStatus.RUNNING
    )
    requested: Mapped[int] = mapped_column(Integer, default=0)
    # Invitations written and not yet sent or failed (queued, sending or waiting to retry).
    queued: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def decided(self) -> int:
        """How many requested records have reached an end (sent or failed)."""
        return self.sent + self.failed


class BulkChunk(Base):
    """The record ids of one chunk message; the row, not the message, is the truth."""

    __tablename__ = "bulk_chunks"
    __table_args__ = (UniqueConstraint("bulk_run_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bulk_run_id: Mapped[int] = mapped_column(ForeignKey("bulk_runs.id"))
    seq: Mapped[int] = mapped_column(Integer)
    crm_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    status: Mapped[ChunkStatus] = mapped_column(
        enum_column(ChunkStatus), default=ChunkStatus.PENDING
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BulkActionRefusal(Base):
    """A portal user a bulk action could not act on, and why (e.g. a refused transition)."""

    __tablename__ = "bulk_action_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    bulk_run_id: Mapped[int] = mapped_column(ForeignKey("bulk_runs.id"), index=True)
    portal_user_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(40))  # a RefusalCode; NULL before 0013
    detail: Mapped[str] = mapped_column(Text)
