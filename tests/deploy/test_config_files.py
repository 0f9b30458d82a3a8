"""Secret settings can come from files named by PORTALFLOW_<NAME>_FILE (Docker secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portalflow.config import SECRET_FIELDS, Settings, SettingsError


def secret_file(tmp_path: Path, content: str, name: str = "secret") -> str:
    path = tmp_path / name
    path.write_bytes(content.encode())
    return str(path)


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("PORTALFLOW_ADMIN_TOKEN_FILE", "admin_token"),
        ("PORTALFLOW_SECRET_KEY_FILE", "secret_key"),
        ("PORTALFLOW_DATABASE_URL_FILE", "database_url"),
        ("PORTALFLOW_SMTP_PASSWORD_FILE", "smtp_password"),
        ("PORTALFLOW_TWILIO_AUTH_TOKEN_FILE", "twilio_auth_token"),
        ("PORTALFLOW_BROKER_URL_FILE", "broker_url"),
        ("PORTALFLOW_RATE_LIMIT_REDIS_URL_FILE", "rate_limit_redis_url"),
    ],
)
def test_a_secret_is_read_from_its_file(tmp_path: Path, variable: str, field: str) -> None:
    value = "redis://:pw@cache:6379/1" if field.endswith("url") else "s3cr3t value"
    if field == "database_url":
        value = "postgresql+psycopg://app:pw@db:5432/app"
    settings = Settings.from_env({variable: secret_file(tmp_path, value + "\n")})
    assert getattr(settings, field) == value


def test_only_one_trailing_newline_is_stripped(tmp_path: Path) -> None:
    environ = {"PORTALFLOW_ADMIN_TOKEN_FILE": secret_file(tmp_path, "  token \n\n")}
    assert Settings.from_env(environ).admin_token == "  token \n"
    environ = {"PORTALFLOW_ADMIN_TOKEN_FILE": secret_file(tmp_path, "token\r\n")}
    assert Settings.from_env(environ).admin_token == "token"
    environ = {"PORTALFLOW_ADMIN_TOKEN_FILE": secret_file(tmp_path, "token")}
    assert Settings.from_env(environ).admin_token == "token"


def test_the_variable_and_its_file_together_are_refused(tmp_path: Path) -> None:
    environ = {
        "PORTALFLOW_SECRET_KEY": "inline",
        "PORTALFLOW_SECRET_KEY_FILE": secret_file(tmp_path, "from file"),
    }
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    assert "PORTALFLOW_SECRET_KEY and PORTALFLOW_SECRET_KEY_FILE" in str(refused.value)


def test_a_missing_file_is_a_clear_error_that_shows_no_secret(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"PORTALFLOW_DATABASE_URL_FILE": str(missing)})
    message = str(refused.value)
    assert message.startswith("PORTALFLOW_DATABASE_URL_FILE: cannot read")
    assert str(missing) in message
    assert "No such file" in message


def test_a_directory_or_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PORTALFLOW_ADMIN_TOKEN_FILE: cannot read"):
        Settings.from_env({"PORTALFLOW_ADMIN_TOKEN_FILE": str(tmp_path)})
    with pytest.raises(SettingsError, match="is empty"):
        Settings.from_env({"PORTALFLOW_ADMIN_TOKEN_FILE": secret_file(tmp_path, "\n")})


def test_settings_that_are_not_secret_have_no_file_variant(tmp_path: Path) -> None:
    environ = {"PORTALFLOW_SMTP_HOST_FILE": secret_file(tmp_path, "mail.example.com")}
    assert Settings.from_env(environ).smtp_host == Settings().smtp_host
    assert "smtp_host" not in SECRET_FIELDS


def test_an_empty_file_variable_means_unset(tmp_path: Path) -> None:
    environ = {"PORTALFLOW_ADMIN_TOKEN": "inline", "PORTALFLOW_ADMIN_TOKEN_FILE": ""}
    assert Settings.from_env(environ).admin_token == "inline"
