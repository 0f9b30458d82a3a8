"""An org's custom email templates, per user type, kind and language."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base
from .enums import EmailKind
from .types import UTCDateTime, enum_column, utcnow


class EmailTemplate(Base):
    """A saved customisation; with none saved, the shipped default for the language is used."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("user_type_id", "kind", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    kind: Mapped[EmailKind] = mapped_column(enum_column(EmailKind))
    language: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(998))
    html_body: Mapped[str] = mapped_column(Text)
    # None: the plain-text part is derived from the HTML body.
    text_body: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
