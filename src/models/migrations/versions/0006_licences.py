"""licences

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "licence_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("edition", sa.String(length=20), nullable=False),
        sa.Column("holders", sa.Integer(), nullable=False),
        sa.Column("licences", sa.Integer(), nullable=False),
        sa.Column("monthly_price_cents", sa.Integer(), nullable=False),
        sa.Column("overage", sa.Boolean(), nullable=False),
        sa.Column("trial_expired", sa.Boolean(), nullable=False),
        sa.Column("deletion_scheduled_for", sa.Date(), nullable=True),
        sa.Column("counters_corrected", sa.Integer(), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_licence_reports_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_reports")),
        sa.UniqueConstraint("org_id", "day", name=op.f("uq_licence_reports_org_id_day")),
    )
    op.create_table(
        "licence_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_licence_alerts_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_licence_alerts_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_licence_alerts_dedupe_key")),
    )
    with op.batch_alter_table("licence_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licence_alerts_org_id"), ["org_id"], unique=False)

    op.create_table(
        "licence_purchases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_licence_purchases_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_licence_purchases_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_purchases")),
    )
    with op.batch_alter_table("licence_purchases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licence_purchases_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_licence_purchases_type_from", ["user_type_id", "effective_from"], unique=False
        )

    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trial_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("admin_email", sa.String(length=254), nullable=True))
        batch_op.add_column(
            sa.Column("near_limit_percent", sa.Integer(), server_default="90", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "price_slabs",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("deletion_scheduled_for", sa.Date(), nullable=True))

    with op.batch_alter_table("portal_user_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holders_cached", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("portal_user_types", schema=None) as batch_op:
        batch_op.drop_column("holders_cached")

    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.drop_column("deletion_scheduled_for")
        batch_op.drop_column("price_slabs")
        batch_op.drop_column("near_limit_percent")
        batch_op.drop_column("admin_email")
        batch_op.drop_column("trial_started_at")

    with op.batch_alter_table("licence_purchases", schema=None) as batch_op:
        batch_op.drop_index("ix_licence_purchases_type_from")
        batch_op.drop_index(batch_op.f("ix_licence_purchases_org_id"))

    op.drop_table("licence_purchases")
    with op.batch_alter_table("licence_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_alerts_org_id"))

    op.drop_table("licence_alerts")
    op.drop_table("licence_reports")
