"""Outbound webhooks: an org's CRM endpoints, and the outbox of deliveries to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .enums import WebhookDeliveryStatus, WebhookEventType
from .types import UTCDateTime, enum_column, utcnow


class WebhookEndpoint(Base):
    """A URL of the org's CRM that wants some event types, signed with the endpoint's secret.

    The secrets are stored encrypted (Fernet, a key from the environment) because signing
    needs them whole; during a rotation the previous one signs too until it expires.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    # The event type values wanted; an empty list means every type.
    event_types: Mapped[list[str]] = mapped_column(JSONDocument)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction of the change it reports.

    ``body`` is the exact JSON sent (and signed) at every attempt; ``event_id`` is the same
    for every endpoint of the event, so a CRM de-duplicates on it. Rows of one endpoint that
    share an ``order_key`` (a portal user, a record) are delivered in id order.
    """

    __tablename__ = "webhook_deliveries"
    # Two index entries per new row (the key and the open line): the bulk invite writes two
    # rows per invitation, and every entry costs it. The other queries (the replay, the
    # admin's listings) scan the open rows or a table that retention keeps small.
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_open_order",  # is an earlier row of the same user open?
            "endpoint_id",
            "order_key",
            "id",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
        Index(
            "ix_webhook_deliveries_dead",  # what the admin and /ops must see
            "org_id",
            postgresql_where=text("status = 'dead'"),
            sqlite_where=text("status = 'dead'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys: each is a check per row written, two rows per bulk invitation.
    # Deleting an endpoint deletes its rows; a row whose endpoint is gone is dropped when met.
    org_id: Mapped[int] = mapped_column(Integer)
    endpoint_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[WebhookEventType] = mapped_column(enum_column(WebhookEventType))
    order_key: Mapped[str | None] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[WebhookDeliveryStatus] = mapped_column(enum_column(WebhookDeliveryStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claim_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last attempt's answer: a WebhookFailureCode value, the HTTP status, free text.
    last_failure_code: Mapped[str | None] = mapped_column(String(64))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
