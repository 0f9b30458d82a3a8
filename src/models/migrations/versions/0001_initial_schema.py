"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "orgs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("company_domain", sa.String(length=253), nullable=False),
        sa.Column(
            "edition",
            sa.Enum(
                "trial",
                "free",
                "standard",
                "professional",
                "enterprise",
                "ultimate",
                name="edition",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "data_centre",
            sa.Enum(
                "us",
                "eu",
                "in",
                "au",
                "jp",
                "ca",
                "cn",
                name="datacentre",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("default_from_email", sa.String(length=254), nullable=True),
        sa.Column("default_from_name", sa.String(length=200), nullable=True),
        sa.Column("default_reply_to", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
    )
    op.create_table(
        "crm_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "module_permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "record_access",
            sa.Enum("all", "owned", name="recordaccess", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_crm_users_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_users")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_crm_users_org_id_email")),
    )
    with op.batch_alter_table("crm_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_users_org_id"), ["org_id"], unique=False)

    op.create_table(
        "portal_user_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column(
            "invitation_preference",
            sa.Enum("email", "phone", name="invitationpreference", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("invitation_field", sa.String(length=100), nullable=False),
        sa.Column("is_client_portal", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_portal_user_types_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_user_types")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_portal_user_types_org_id_name")),
    )
    with op.batch_alter_table("portal_user_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_user_types_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "uq_portal_user_types_client_portal",
            ["org_id"],
            unique=True,
            postgresql_where=sa.text("is_client_portal"),
            sqlite_where=sa.text("is_client_portal"),
        )

    op.create_table(
        "portals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_portals_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portals")),
        sa.UniqueConstraint("org_id", name=op.f("uq_portals_org_id")),
        sa.UniqueConstraint("slug", name=op.f("uq_portals_slug")),
    )
    op.create_table(
        "bulk_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column("inviter_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "accept_invitation", "confirm_email", name="emailkind", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column(
            "status",
            sa.Enum("running", "completed", name="bulkrunstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["inviter_id"], ["crm_users.id"], name=op.f("fk_bulk_runs_inviter_id_crm_users")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_bulk_runs_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_bulk_runs_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_runs")),
    )
    with op.batch_alter_table("bulk_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bulk_runs_org_id"), ["org_id"], unique=False)

    op.create_table(
        "crm_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.String(length=100), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("approval_locked", sa.Boolean(), nullable=False),
        sa.Column("review_locked", sa.Boolean(), nullable=False),
        sa.Column("processing_basis", sa.String(length=40), nullable=True),
        sa.Column("consent_given", sa.Boolean(), nullable=False),
        sa.Column("in_recycle_bin", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column(
            "fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_crm_records_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["crm_users.id"], name=op.f("fk_crm_records_owner_id_crm_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_records")),
        sa.UniqueConstraint("org_id", "crm_id", name=op.f("uq_crm_records_org_id_crm_id")),
    )
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.create_index("ix_crm_records_org_module", ["org_id", "module"], unique=False)

    op.create_table(
        "email_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "accept_invitation", "confirm_email", name="emailkind", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_email_templates_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_email_templates_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_templates")),
        sa.UniqueConstraint(
            "user_type_id",
            "kind",
            "language",
            name=op.f("uq_email_templates_user_type_id_kind_language"),
        ),
    )
    with op.batch_alter_table("email_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_templates_org_id"), ["org_id"], unique=False)

    op.create_table(
        "bulk_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulk_run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column(
            "crm_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("pending", "expanded", name="chunkstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_run_id"], ["bulk_runs.id"], name=op.f("fk_bulk_chunks_bulk_run_id_bulk_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_chunks")),
        sa.UniqueConstraint("bulk_run_id", "seq", name=op.f("uq_bulk_chunks_bulk_run_id_seq")),
    )
    op.create_table(
        "portal_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "invited",
                "confirmed",
                "login_suspended",
                "deactivated",
                "removed",
                name="portaluserstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["crm_users.id"],
            name=op.f("fk_portal_users_invited_by_id_crm_users"),
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_portal_users_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["crm_records.id"], name=op.f("fk_portal_users_record_id_crm_records")
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_portal_users_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_users")),
        sa.UniqueConstraint("record_id", name=op.f("uq_portal_users_record_id")),
    )
    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_users_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_portal_users_type_status", ["user_type_id", "status"], unique=False
        )

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_type_id", sa.Integer(), nullable=False),
        sa.Column("bulk_run_id", sa.Integer(), nullable=True),
        sa.Column("bulk_chunk_id", sa.Integer(), nullable=True),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("portal_user_id", sa.Integer(), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "accept_invitation", "confirm_email", name="emailkind", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum("email", "sms", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "failed",
                "superseded",
                "accepted",
                "expired",
                name="invitationstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_detail", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_hash", sa.CHAR(length=64), nullable=True),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_chunk_id"],
            ["bulk_chunks.id"],
            name=op.f("fk_invitations_bulk_chunk_id_bulk_chunks"),
        ),
        sa.ForeignKeyConstraint(
            ["bulk_run_id"], ["bulk_runs.id"], name=op.f("fk_invitations_bulk_run_id_bulk_runs")
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"], ["crm_users.id"], name=op.f("fk_invitations_invited_by_id_crm_users")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_invitations_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["portal_user_id"],
            ["portal_users.id"],
            name=op.f("fk_invitations_portal_user_id_portal_users"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["crm_records.id"], name=op.f("fk_invitations_record_id_crm_records")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"],
            ["invitations.id"],
            name=op.f("fk_invitations_superseded_by_id_invitations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_type_id"],
            ["portal_user_types.id"],
            name=op.f("fk_invitations_user_type_id_portal_user_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invitations_bulk_run_status", ["bulk_run_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_invitations_chunk_status", ["bulk_chunk_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_invitations_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_invitations_portal_user_status", ["portal_user_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_invitations_status_claimed", ["status", "claimed_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_status_claimed")
        batch_op.drop_index("ix_invitations_portal_user_status")
        batch_op.drop_index(batch_op.f("ix_invitations_org_id"))
        batch_op.drop_index("ix_invitations_chunk_status")
        batch_op.drop_index("ix_invitations_bulk_run_status")

    op.drop_table("invitations")
    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_users_type_status")
        batch_op.drop_index(batch_op.f("ix_portal_users_org_id"))

    op.drop_table("portal_users")
    op.drop_table("bulk_chunks")
    with op.batch_alter_table("email_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_templates_org_id"))

    op.drop_table("email_templates")
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_records_org_module")

    op.drop_table("crm_records")
    with op.batch_alter_table("bulk_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_runs_org_id"))

    op.drop_table("bulk_runs")
    op.drop_table("portals")
    with op.batch_alter_table("portal_user_types", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_portal_user_types_client_portal",
            postgresql_where=sa.text("is_client_portal"),
            sqlite_where=sa.text("is_client_portal"),
        )
        batch_op.drop_index(batch_op.f("ix_portal_user_types_org_id"))

    op.drop_table("portal_user_types")
    with op.batch_alter_table("crm_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crm_users_org_id"))

    op.drop_table("crm_users")
    op.drop_table("orgs")
