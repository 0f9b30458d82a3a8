"""bulk action refusals, and the expiry sweep's index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "bulk_action_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulk_run_id", sa.Integer(), nullable=False),
        sa.Column("portal_user_id", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_run_id"],
            ["bulk_runs.id"],
            name=op.f("fk_bulk_action_refusals_bulk_run_id_bulk_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_action_refusals")),
    )
    with op.batch_alter_table("bulk_action_refusals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bulk_action_refusals_bulk_run_id"), ["bulk_run_id"], unique=False
        )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("ix_invitations_status_expires", ["status", "expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_status_expires")

    with op.batch_alter_table("bulk_action_refusals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_action_refusals_bulk_run_id"))

    op.drop_table("bulk_action_refusals")
