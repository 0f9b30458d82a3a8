"""a bulk action's refusals carry their code beside the detail

Refusals written before this migration keep a NULL code (their detail may start with it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulk_action_refusals") as batch:
        batch.add_column(sa.Column("code", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulk_action_refusals") as batch:
        batch.drop_column("code")
