"""the ops page's per-minute samples

One row per (minute, series, label) written by the ops sampler; rows older than 25 hours
are deleted by the sampler itself.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ops_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("series", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_samples")),
        sa.UniqueConstraint("at", "series", "label", name=op.f("uq_ops_samples_at_series_label")),
    )


def downgrade() -> None:
    op.drop_table("ops_samples")
