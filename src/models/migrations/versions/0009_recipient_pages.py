"""the recipient's side: a portal user's full locale, an org's email branding

Accepting an invitation sets language, time format, time zone and country (PORTALS.md); a
CRM user's locale is where their defaults come from. An org can give its invitation emails a
logo and a footer (its address, a support contact).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_format", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
    with op.batch_alter_table("crm_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_format", sa.String(length=8), nullable=False, server_default="12h")
        )
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logo_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("email_footer", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.drop_column("email_footer")
        batch_op.drop_column("logo_url")
    with op.batch_alter_table("crm_users", schema=None) as batch_op:
        batch_op.drop_column("country")
        batch_op.drop_column("time_format")
    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.drop_column("country")
        batch_op.drop_column("time_format")
