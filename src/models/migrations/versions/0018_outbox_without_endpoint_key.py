"""webhook deliveries keep their endpoint's id without a foreign key

A bulk invite writes two outbox rows per invitation, and the key's check was a fifth of
what PostgreSQL spent on each. Deleting an endpoint deletes its deliveries itself, and a
delivery whose endpoint is gone is dropped by the worker that meets it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

KEY = "fk_webhook_deliveries_endpoint_id_webhook_endpoints"


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint(KEY, type_="foreignkey")


def downgrade() -> None:
    op.execute(
        "DELETE FROM webhook_deliveries WHERE endpoint_id NOT IN (SELECT id FROM webhook_endpoints)"
    )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.create_foreign_key(
            KEY, "webhook_endpoints", ["endpoint_id"], ["id"], ondelete="CASCADE"
        )
