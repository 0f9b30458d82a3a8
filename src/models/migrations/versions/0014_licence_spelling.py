"""one spelling: the licence-limit code is licence_limit wherever it is stored

Before, the code was ``license_limit`` (and refusals of bulk actions carried it at the start
of their detail). Rows written earlier are rewritten so a filter on the code finds them all.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD, NEW = "license_limit", "licence_limit"
CODE_COLUMNS = (
    ("invitations", "failure_code"),
    ("crm_events", "result_code"),
    ("bulk_action_refusals", "code"),
)


def upgrade() -> None:
    for table, column in CODE_COLUMNS:
        op.execute(f"UPDATE {table} SET {column} = '{NEW}' WHERE {column} = '{OLD}'")
    # A refusal's detail used to start with its code: the code moves to its column.
    prefix = f"{OLD}: "
    op.execute(
        f"UPDATE bulk_action_refusals SET code = '{NEW}', "
        f"detail = substr(detail, {len(prefix) + 1}) WHERE detail LIKE '{prefix}%'"
    )


def downgrade() -> None:
    for table, column in CODE_COLUMNS:
        op.execute(f"UPDATE {table} SET {column} = '{OLD}' WHERE {column} = '{NEW}'")
