"""delivery outcomes, suppressions, channel pauses, provider events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "provider_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "processed",
                "ignored",
                "failed",
                name="providereventstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_provider_events_dedupe_key")),
    )
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provider_events_status_received", ["status", "received_at"], unique=False
        )

    op.create_table(
        "channel_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("email", "sms", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_channel_pauses_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_pauses")),
    )
    with op.batch_alter_table("channel_pauses", schema=None) as batch_op:
        batch_op.create_index(
            "uq_channel_pauses_active",
            ["org_id", "channel"],
            unique=True,
            postgresql_where=sa.text("resumed_at IS NULL"),
            sqlite_where=sa.text("resumed_at IS NULL"),
        )

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("email", "sms", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_suppressions_invitation_id_invitations"),
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_suppressions_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
    )
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_suppressions_active",
            ["org_id", "channel", "address"],
            unique=True,
            postgresql_where=sa.text("cleared_at IS NULL"),
            sqlite_where=sa.text("cleared_at IS NULL"),
        )

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "outcome_class",
                sa.Enum(
                    "delivered",
                    "permanent",
                    "temporary",
                    "configuration",
                    "unknown",
                    "complained",
                    name="outcomeclass",
                    native_enum=False,
                    length=32,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("outcome_code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("outcome_raw", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_invitations_provider_message_id", ["provider_message_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_provider_message_id")
        batch_op.drop_column("outcome_at")
        batch_op.drop_column("outcome_raw")
        batch_op.drop_column("outcome_code")
        batch_op.drop_column("outcome_class")

    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_suppressions_active",
            postgresql_where=sa.text("cleared_at IS NULL"),
            sqlite_where=sa.text("cleared_at IS NULL"),
        )

    op.drop_table("suppressions")
    with op.batch_alter_table("channel_pauses", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_channel_pauses_active",
            postgresql_where=sa.text("resumed_at IS NULL"),
            sqlite_where=sa.text("resumed_at IS NULL"),
        )

    op.drop_table("channel_pauses")
    with op.batch_alter_table("provider_events", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_events_status_received")

    op.drop_table("provider_events")
