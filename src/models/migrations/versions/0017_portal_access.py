"""what a portal user may see: field catalogues, module exposures, permission sets

Each org declares its modules' fields (type, picklist options, lookup target, PII/ePHI);
each user type exposes modules to its portal users by lookup and/or criteria, with default
record and field permissions; named permission sets, assigned to portal users, override
those defaults.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "module_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column(
            "type",
            sa.Enum(
                "text",
                "picklist",
                "number",
                "date",
                "boolean",
                "lookup",
                "multi_lookup",
                name="fieldtype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("options", _json(), nullable=True),
        sa.Column("lookup_module", sa.String(length=100), nullable=True),
        sa.Column("pii", sa.Boolean(), nullable=False),
        sa.Column("ephi", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_module_fields_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_fields")),
        sa.UniqueConstraint(
            "org_id", "module", "name", name=op.f("uq_module_fields_org_id_module_name")
        ),
    )
    op.create_table(
        "module_exposures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("rule", _json(), nullable=True),
        sa.Column("can_create", sa.Boolean(), nullable=False),
        sa.Column("can_view", sa.Boolean(), nullable=False),
        sa.Column("can_edit", sa.Boolean(), nullable=False),
        sa.Column("can_edit_shared", sa.Boolean(), nullable=False),
        sa.Column("can_delete", sa.Boolean(), nullable=False),
        sa.Column("field_access", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_module_exposures_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_module_exposures_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_exposures")),
        sa.UniqueConstraint(
            "user_type_id", "module", name=op.f("uq_module_exposures_user_type_id_module")
        ),
    )
    op.create_table(
        "permission_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("show_pii", sa.Boolean(), nullable=False),
        sa.Column("show_ephi", sa.Boolean(), nullable=False),
        sa.Column("modules", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_permission_sets_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_permission_sets_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permission_sets")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_permission_sets_org_id_name")),
    )
    op.create_table(
        "permission_set_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("portal_user_id", sa.Integer(), nullable=False),
        sa.Column("permission_set_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["permission_set_id"],
            ["permission_sets.id"],
            name=op.f("fk_permission_set_assignments_permission_set_id_permission_sets"),
        ),
        sa.ForeignKeyConstraint(
            ["portal_user_id"],
            ["portal_users.id"],
            name=op.f("fk_permission_set_assignments_portal_user_id_portal_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permission_set_assignments")),
        sa.UniqueConstraint(
            "portal_user_id", name=op.f("uq_permission_set_assignments_portal_user_id")
        ),
    )
    with op.batch_alter_table("permission_set_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_permission_set_assignments_permission_set_id", ["permission_set_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("permission_set_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_permission_set_assignments_permission_set_id")
    op.drop_table("permission_set_assignments")
    op.drop_table("permission_sets")
    op.drop_table("module_exposures")
    op.drop_table("module_fields")
