"""claim deadlines, send receipts, SMS debits on the attempt, partial indexes

An invitation row is inserted and updated once per send; each index is maintained on both.
The indexes that serve one status (recovery's sending rows, the sweep's sent rows, a chunk's
queued rows) or only set values (provider message ids) become partial, so the rows that do
not match them cost nothing there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SENDING = sa.text("status = 'sending'")
SENT = sa.text("status = 'sent'")
QUEUED = sa.text("status = 'queued'")
HAS_MESSAGE_ID = sa.text("provider_message_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("sms_debited", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.drop_index("ix_invitations_status_claimed")
        batch_op.drop_index("ix_invitations_status_expires")
        batch_op.drop_index("ix_invitations_chunk_status")
        batch_op.drop_index("ix_invitations_provider_message_id")
        batch_op.create_index(
            "ix_invitations_chunk_queued",
            ["bulk_chunk_id"],
            unique=False,
            postgresql_where=QUEUED,
            sqlite_where=QUEUED,
        )
        batch_op.create_index(
            "ix_invitations_provider_message_id",
            ["provider_message_id"],
            unique=False,
            postgresql_where=HAS_MESSAGE_ID,
            sqlite_where=HAS_MESSAGE_ID,
        )
        batch_op.create_index(
            "ix_invitations_sending_deadline",
            ["claim_deadline"],
            unique=False,
            postgresql_where=SENDING,
            sqlite_where=SENDING,
        )
        batch_op.create_index(
            "ix_invitations_sent_expires",
            ["expires_at"],
            unique=False,
            postgresql_where=SENT,
            sqlite_where=SENT,
        )
    op.create_table(
        "send_receipts",
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=False),
        sa.Column("provider_message_id", sa.String(length=255), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_send_receipts_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invitation_id", "claim_token", name=op.f("pk_send_receipts")),
    )


def downgrade() -> None:
    op.drop_table("send_receipts")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_sent_expires")
        batch_op.drop_index("ix_invitations_sending_deadline")
        batch_op.drop_index("ix_invitations_provider_message_id")
        batch_op.drop_index("ix_invitations_chunk_queued")
        batch_op.create_index(
            "ix_invitations_provider_message_id", ["provider_message_id"], unique=False
        )
        batch_op.create_index(
            "ix_invitations_chunk_status", ["bulk_chunk_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_invitations_status_expires", ["status", "expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_invitations_status_claimed", ["status", "claimed_at"], unique=False
        )
        batch_op.drop_column("sms_debited")
        batch_op.drop_column("claim_deadline")
