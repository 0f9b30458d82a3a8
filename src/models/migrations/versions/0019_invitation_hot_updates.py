"""invitations: expiring, accepting or superseding one touches no index

No index of ``invitations`` names ``status`` any more, not even in a partial index's WHERE:
the partial indexes of queued and sending rows look at a generated column,
``dispatch_status`` (the status while a worker still acts on the row, else NULL), and the
expiry sweep walks ``expires_at`` from a watermark kept in ``sweep_marks``. A write that
changes only ``status`` and columns no index holds is then a HOT update on PostgreSQL,
provided the row's page has room: the table keeps half of each page free (fillfactor 50).

On PostgreSQL adding the stored column rewrites the table under an exclusive lock: on a
large table, run this migration in a quiet window.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DISPATCH_STATUS = "CASE WHEN status IN ('queued', 'sending') THEN status END"
FILLFACTOR = 50

# (name, columns, partial WHERE or None): the indexes this revision replaces, before and after.
BEFORE = (
    ("ix_invitations_bulk_run_status", ["bulk_run_id", "status"], None),
    ("ix_invitations_chunk_queued", ["bulk_chunk_id"], "status = 'queued'"),
    ("ix_invitations_sending_deadline", ["claim_deadline"], "status = 'sending'"),
    ("ix_invitations_portal_user_status", ["portal_user_id", "status"], None),
    ("ix_invitations_sent_expires", ["expires_at"], "status = 'sent'"),
)
AFTER = (
    ("ix_invitations_bulk_run_id", ["bulk_run_id"], None),
    ("ix_invitations_chunk_queued", ["bulk_chunk_id"], "dispatch_status = 'queued'"),
    ("ix_invitations_sending_deadline", ["claim_deadline"], "dispatch_status = 'sending'"),
    ("ix_invitations_portal_user_id", ["portal_user_id"], None),
    ("ix_invitations_expires_at", ["expires_at"], "expires_at IS NOT NULL"),
)


def _create(indexes: tuple[tuple[str, list[str], str | None], ...]) -> None:
    for name, columns, where in indexes:
        condition = None if where is None else sa.text(where)
        partial = {"postgresql_where": condition, "sqlite_where": condition} if where else {}
        op.create_index(name, "invitations", columns, **partial)


def _drop(indexes: tuple[tuple[str, list[str], str | None], ...]) -> None:
    for name, _columns, _where in indexes:
        op.drop_index(name, table_name="invitations")


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    _drop(BEFORE)
    if _postgresql():
        # Before the column: the rewrite that adding it makes lays the rows out with room.
        op.execute(f"ALTER TABLE invitations SET (fillfactor = {FILLFACTOR})")
    # SQLite cannot add a stored generated column in place: batch mode copies the table.
    recreate = "auto" if _postgresql() else "always"
    generated = sa.Computed(DISPATCH_STATUS, persisted=True)
    with op.batch_alter_table("invitations", recreate=recreate) as batch:
        batch.add_column(sa.Column("dispatch_status", sa.String(length=16), generated))
    _create(AFTER)
    op.create_table(
        "sweep_marks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("reached", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sweep_marks")),
    )


def downgrade() -> None:
    op.drop_table("sweep_marks")
    _drop(AFTER)
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("dispatch_status")
    if _postgresql():
        op.execute("ALTER TABLE invitations RESET (fillfactor)")
    _create(BEFORE)
