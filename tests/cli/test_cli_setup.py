"""The real ``portalflow`` CLI against a SQLite file: setup commands and record import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select
from typer.testing import Result

from portalflow.models import CrmRecord, make_engine, make_session_factory
from portalflow.models.schema import alembic_config

from ..cli_runner import invoke


@pytest.fixture
def cli_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli' / 'portalflow.db'}"
    monkeypatch.setenv("PORTALFLOW_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # keep Rich from wrapping what the tests look for
    return url


run = invoke


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_clean_failure(result: Result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "error:" in result.stderr
    assert "Traceback" not in result.output


def test_setup_then_import_records(cli_database_url: str, tmp_path: Path) -> None:
    upgraded = run("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"revision {head}" in upgraded.stdout
    assert "(the latest)" in run("db", "current").stdout

    org = run_json(
        "orgs", "create", "--name", "Zylker", "--domain", "zylker.com", "--country", "IN"
    )
    assert org["portal_slug"] == "zylker"
    assert isinstance(org["client_portal_user_type_id"], int)
    vendors = run_json(
        "user-types", "add", "--org", str(org["id"]), "--name", "Vendors", "--module", "Vendors"
    )
    assert (vendors["module"], vendors["invitation_preference"]) == ("Vendors", "email")
    user = run_json(
        "crm-users",
        "add",
        "--org",
        str(org["id"]),
        "--name",
        "Russell Brown",
        "--email",
        "russell@zylker.com",
        "--modules",
        "Contacts, Leads",
    )
    assert user["modules"] == ["Contacts", "Leads"]
    assert [t["name"] for t in run_json("user-types", "list", "--org", str(org["id"]))] == [
        "Client Portal",
        "Vendors",
    ]
    assert [o["id"] for o in run_json("orgs", "list")] == [org["id"]]

    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "crm_id,first_name,email,owner_email,consent_given\n"
        "C1,Sage,sage@customer.example.org,russell@zylker.com,yes\n"
        "C2,Ann,ann@customer.example.org,,perhaps\n"
        "C3,Bob,bob@customer.example.org,,no\n",
        encoding="utf-8",
    )
    imported = run(
        "records", "import", str(csv_file), "--org", str(org["id"]), "--module", "Contacts"
    )
    assert imported.exit_code == 1, imported.output
    assert "2 created" in imported.stdout
    assert "consent_given" in imported.stdout
    assert "│    3 │" in imported.stdout  # the bad row's line number, in the errors table

    engine = make_engine(cli_database_url)
    try:
        with make_session_factory(engine)() as session:
            loaded = session.scalars(select(CrmRecord.crm_id).order_by(CrmRecord.crm_id)).all()
    finally:
        engine.dispose()
    assert loaded == ["C1", "C3"]

    again = run("records", "import", str(csv_file), "--org", str(org["id"]), "--json")
    assert again.exit_code == 1
    assert json.loads(again.stdout) == {
        "created": 0,
        "updated": 2,
        "errors": [
            {
                "line": 3,
                "message": "field consent_given must be true/false/yes/no/1/0, not 'perhaps'",
            }
        ],
    }


def test_unknown_org_exits_2_without_traceback(cli_database_url: str, tmp_path: Path) -> None:
    assert run("db", "upgrade").exit_code == 0
    csv_file = tmp_path / "records.csv"
    csv_file.write_text("crm_id,module\nC1,Contacts\n", encoding="utf-8")

    assert_clean_failure(
        run("records", "import", str(csv_file), "--org", "999"), "org 999 does not exist"
    )
    assert_clean_failure(
        run("user-types", "add", "--org", "999", "--name", "V", "--module", "Vendors"),
        "org 999 does not exist",
    )
    assert_clean_failure(
        run("records", "import", str(tmp_path / "missing.csv"), "--org", "1"), "does not exist"
    )


def test_commands_before_upgrade_say_run_db_upgrade(cli_database_url: str) -> None:
    for args in (("orgs", "list"), ("crm-users", "list", "--org", "1")):
        result = run(*args)
        assert_clean_failure(result, "has no portalflow schema; run `portalflow db upgrade`")
        assert "portalflow.db" in result.stderr


def test_password_is_masked_in_database_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PORTALFLOW_DATABASE_URL", "postgresql+psycopg://app:s3cret@127.0.0.1:1/portalflow"
    )
    monkeypatch.setenv("COLUMNS", "200")
    result = run("orgs", "list")
    assert_clean_failure(result, "cannot use the database at")
    assert "s3cret" not in result.output
    assert "app:***@" in result.stderr


def test_bad_setting_is_a_clean_error(
    cli_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTALFLOW_EMAIL_CHANNEL", "pigeon")
    assert_clean_failure(run("orgs", "list"), "PORTALFLOW_EMAIL_CHANNEL='pigeon'")


def test_help_explains_configuration() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "PORTALFLOW_" in result.stdout
    for command in ("db", "orgs", "user-types", "crm-users", "records"):
        assert command in result.stdout
    assert "Example" in run("records", "import", "--help").stdout
