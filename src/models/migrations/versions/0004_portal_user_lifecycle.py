"""portal user lifecycle

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "crm_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "record.email_changed",
                "record.phone_changed",
                "lead.converted",
                name="crmeventkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
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
                "failed",
                name="crmeventstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("result_code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_crm_events_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_events")),
        sa.UniqueConstraint(
            "org_id", "idempotency_key", name=op.f("uq_crm_events_org_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("bulk_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "action",
                sa.Enum(
                    "invite",
                    "reinvite",
                    "deactivate",
                    "activate",
                    "remove",
                    "transfer",
                    name="bulkaction",
                    native_enum=False,
                    length=32,
                ),
                server_default="invite",
                nullable=False,
            )
        )

    with op.batch_alter_table("portal_user_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "conversion_default",
                sa.Boolean(),
                server_default=sa.text("(false)"),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("transfer_to_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_portal_user_types_transfer_to_id_portal_user_types"),
            "portal_user_types",
            ["transfer_to_id"],
            ["id"],
        )

    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("pending_email", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:

    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("pending_email")
        batch_op.drop_column("time_zone")
        batch_op.drop_column("language")
        batch_op.drop_column("password_hash")

    with op.batch_alter_table("portal_user_types", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_portal_user_types_transfer_to_id_portal_user_types"), type_="foreignkey"
        )
        batch_op.drop_column("transfer_to_id")
        batch_op.drop_column("conversion_default")

    with op.batch_alter_table("bulk_runs", schema=None) as batch_op:
        batch_op.drop_column("action")

    op.drop_table("crm_events")
