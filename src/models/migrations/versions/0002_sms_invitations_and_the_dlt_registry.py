"""sms invitations and the dlt registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "dlt_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(length=19), nullable=False),
        sa.Column("entity_id", sa.String(length=19), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("header", sa.String(length=20), nullable=True),
        sa.Column("content_type", sa.String(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "approved",
                "rejected",
                "pending",
                name="dlttemplatestatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("variable_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_dlt_templates_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dlt_templates")),
        sa.UniqueConstraint(
            "org_id", "template_id", name=op.f("uq_dlt_templates_org_id_template_id")
        ),
    )
    op.create_table(
        "sms_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "invitation",
                "verification",
                "forgot_password",
                name="smstemplatekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_sms_templates_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_templates")),
    )
    with op.batch_alter_table("sms_templates", schema=None) as batch_op:
        batch_op.create_index("ix_sms_templates_org_kind", ["org_id", "kind"], unique=False)

    op.create_table(
        "sms_template_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("sms_template_id", sa.Integer(), nullable=False),
        sa.Column("dlt_template_id", sa.Integer(), nullable=False),
        sa.Column(
            "verification",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="verificationstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dlt_template_id"],
            ["dlt_templates.id"],
            name=op.f("fk_sms_template_mappings_dlt_template_id_dlt_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_sms_template_mappings_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["sms_template_id"],
            ["sms_templates.id"],
            name=op.f("fk_sms_template_mappings_sms_template_id_sms_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_template_mappings")),
        sa.UniqueConstraint(
            "sms_template_id", name=op.f("uq_sms_template_mappings_sms_template_id")
        ),
    )
    with op.batch_alter_table("sms_template_mappings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sms_template_mappings_org_id"), ["org_id"], unique=False
        )

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dlt_template_id", sa.String(length=19), nullable=True))
        batch_op.add_column(
            sa.Column(
                "sms_encoding",
                sa.Enum("gsm7", "ucs2", name="smsencoding", native_enum=False, length=32),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("sms_segments", sa.Integer(), nullable=True))

    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_credits", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("sms_sender_id", sa.String(length=11), nullable=True))
        batch_op.add_column(
            sa.Column(
                "sms_whitespace_tolerant",
                sa.Boolean(),
                server_default=sa.text("(false)"),
                nullable=False,
            )
        )
        batch_op.create_check_constraint("sms_credits_not_negative", "sms_credits >= 0")


def downgrade() -> None:
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.drop_constraint("sms_credits_not_negative", type_="check")
        batch_op.drop_column("sms_whitespace_tolerant")
        batch_op.drop_column("sms_sender_id")
        batch_op.drop_column("sms_credits")

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("sms_segments")
        batch_op.drop_column("sms_encoding")
        batch_op.drop_column("dlt_template_id")

    with op.batch_alter_table("sms_template_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_template_mappings_org_id"))

    op.drop_table("sms_template_mappings")
    with op.batch_alter_table("sms_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_templates_org_kind")

    op.drop_table("sms_templates")
    op.drop_table("dlt_templates")
