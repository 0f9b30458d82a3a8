"""Invitations: one row per invitation attempt for a record, the unit of dispatch work."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CHAR, Computed, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .enums import Channel, EmailKind, InvitationStatus, OutcomeClass, SmsEncoding
from .types import UTCDateTime, enum_column, utcnow

# The generated column's expression (migration 0019 writes the same text).
DISPATCH_STATUS = "CASE WHEN status IN ('queued', 'sending') THEN status END"


class Invitation(Base):
    """An invitation's whole life: refused, or queued -> sending -> sent -> accepted/expired.

    Refused records are rows too (status ``failed`` with a reason code), so a bulk run's
    failed invitees and an admin's failure report are one query over one table.
    """

    __tablename__ = "invitations"
    # No index names ``status`` (not even in a partial index's WHERE), nor ``updated_at``: a
    # write that changes only those (expire, accept, supersede) is then a HOT update on
    # PostgreSQL, the row rewritten in its page with no index touched, as long as the page
    # has room (migration 0019 leaves half of each page free: ``fillfactor = 50``). The
    # partial indexes of rows a worker still acts on look at ``dispatch_status`` instead,
    # which those writes leave NULL.
    __table_args__ = (
        Index("ix_invitations_bulk_run_id", "bulk_run_id"),
        Index(
            "ix_invitations_chunk_queued",  # a chunk's rows left to send (redelivery, replay)
            "bulk_chunk_id",
            postgresql_where=text("dispatch_status = 'queued'"),
            sqlite_where=text("dispatch_status = 'queued'"),
        ),
        Index(
            "ix_invitations_sending_deadline",  # recovery: claims whose deadline passed
            "claim_deadline",
            postgresql_where=text("dispatch_status = 'sending'"),
            sqlite_where=text("dispatch_status = 'sending'"),
        ),
        Index("ix_invitations_portal_user_id", "portal_user_id"),
        Index(
            "ix_invitations_provider_message_id",  # provider events find their invitation
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
            sqlite_where=text("provider_message_id IS NOT NULL"),
        ),
        Index(
            # The expiry sweep, from its watermark (``SweepMark``): expired rows keep their
            # entry, so that expiring one touches no index.
            "ix_invitations_expires_at",
            "expires_at",
            postgresql_where=text("expires_at IS NOT NULL"),
            sqlite_where=text("expires_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    bulk_run_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_runs.id"))
    bulk_chunk_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_chunks.id"))
    # The CRM id asked for; record_id is None when no such record exists.
    crm_id: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("crm_records.id"))
    portal_user_id: Mapped[int | None] = mapped_column(ForeignKey("portal_users.id"))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("crm_users.id"))
    kind: Mapped[EmailKind] = mapped_column(enum_column(EmailKind))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel), default=Channel.EMAIL)
    language: Mapped[str] = mapped_column(String(10), default="en")
    address: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[InvitationStatus] = mapped_column(enum_column(InvitationStatus))
    # ``status`` while a worker still acts on the row (queued, sending), else NULL; written
    # by the database. Only it is indexed, so leaving ``sent`` touches no index.
    dispatch_status: Mapped[str | None] = mapped_column(
        String(16), Computed(DISPATCH_STATUS, persisted=True)
    )
    # A stable code (ReasonCode or SendFailureCode value); free text only in the detail.
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the claim lapses unless its live worker extends it; recovery takes the row then.
    claim_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 of the invitation token, hex; the token itself is never stored.
    token_hash: Mapped[str | None] = mapped_column(CHAR(64), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SMS only: the DLT template the message was checked against, and its size.
    dlt_template_id: Mapped[str | None] = mapped_column(String(19))
    sms_encoding: Mapped[SmsEncoding | None] = mapped_column(enum_column(SmsEncoding))
    sms_segments: Mapped[int | None] = mapped_column(Integer)
    # SMS credits debited for the attempt under way, not yet settled: given back when the
    # attempt ends without the provider taking the message, kept when it took it.
    sms_debited: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the provider said after accepting it (bounce, complaint, delivery receipt).
    outcome_class: Mapped[OutcomeClass | None] = mapped_column(enum_column(OutcomeClass))
    outcome_code: Mapped[str | None] = mapped_column(String(64))
    outcome_raw: Mapped[str | None] = mapped_column(String(200))
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SendReceipt(Base):
    """The provider took this claimed invitation's message: written the moment it answers.

    A narrow row, one INSERT and commit per message, so that the wide invitation row with
    its indexes is written once per batch; recovery completes a dead claim's rows that have
    one as sent instead of sending them again. Keyed by row and claim; deleted when the batch's
    outcomes are written.
    """

    __tablename__ = "send_receipts"

    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), primary_key=True
    )
    # Part of the key: a worker that stalled past its claim may still write the receipt of
    # its lapsed claim for a row the next claim is sending; the two must not collide.
    claim_token: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
