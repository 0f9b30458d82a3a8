"""Migration 0019 on a database with invitations in it, up and down, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from portalflow.models.schema import alembic_config, upgrade

from ..conftest import empty_postgres_database

STATUSES = ("queued", "sending", "sent", "accepted", "expired", "failed")
INSERT = """
INSERT INTO invitations (id, org_id, user_type_id, crm_id, kind, channel, language, status,
                         attempts, sms_debited, created_at, updated_at)
VALUES (:id, 1, 1, :crm_id, 'accept_invitation', 'email', 'en', :status, 0, 0,
        CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)
"""

# A row of a table that references invitations (ON DELETE CASCADE): rebuilding the table
# must not take it away.
RECEIPT = """
INSERT INTO send_receipts (invitation_id, claim_token, provider_message_id, sent_at)
VALUES (2, 'claim', 'message-2', CURRENT_TIMESTAMP)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('m0019') / 'portalflow.db'}"
        return
    with empty_postgres_database("portalflow_m0019") as url:
        yield url


def _dispatch_statuses(url: str) -> dict[str, str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT status, dispatch_status FROM invitations"))
            return dict(rows.all())
    finally:
        engine.dispose()


def _receipts(url: str) -> list[tuple[int, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = "SELECT invitation_id, provider_message_id FROM send_receipts"
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def _indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes("invitations")}
    finally:
        engine.dispose()


def test_existing_rows_get_their_dispatch_status_and_the_way_back_works(
    empty_database: str,
) -> None:
    url = empty_database
    upgrade(url, "0018")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # The rows name an org and a user type that this bare schema does not hold.
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            for n, status in enumerate(STATUSES, start=1):
                connection.execute(text(INSERT), {"id": n, "crm_id": f"c{n}", "status": status})
            connection.execute(text(RECEIPT))
    finally:
        engine.dispose()

    upgrade(url)
    expected = {s: s if s in ("queued", "sending") else None for s in STATUSES}
    assert _dispatch_statuses(url) == expected
    assert _receipts(url) == [(2, "message-2")]
    assert "ix_invitations_sent_expires" not in _indexes(url)
    assert {"ix_invitations_expires_at", "ix_invitations_chunk_queued"} <= _indexes(url)

    command.downgrade(alembic_config(url), "0018")
    assert "ix_invitations_sent_expires" in _indexes(url)
    assert "ix_invitations_expires_at" not in _indexes(url)
    upgrade(url)
    assert _dispatch_statuses(url) == expected
    assert _receipts(url) == [(2, "message-2")]
