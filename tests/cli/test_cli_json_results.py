"""Every command that prints a result can print it as JSON (``--json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portalflow.config import Settings
from portalflow.models import Channel, make_engine, make_session_factory
from portalflow.pipelines.delivery import pauses

from ..cli_runner import invoke

INVITE_HTML = '<p>Hi {{ record.first_name }}</p><p><a href="{{ invite_url }}">Accept</a></p>'


def run_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def zylker(cli_env: Path) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    created = invoke("orgs", "create", "--name", "Zylker", "--domain", "zylker.com",
                     "--country", "US")  # fmt: skip
    assert created.exit_code == 0, created.output


@pytest.mark.usefixtures("zylker")
def test_api_keys_create_prints_the_key_once_as_json() -> None:
    created = run_json("api-keys", "create", "--org", "1", "--name", "zoho-crm")

    assert (created["org_id"], created["name"]) == (1, "zoho-crm")
    assert created["prefix"] in created["key"]
    listed = run_json("api-keys", "list", "--org", "1")
    assert "key" not in json.dumps(listed).replace('"keys"', "")  # listed without the secret


@pytest.mark.usefixtures("zylker")
def test_templates_save_and_reset_print_json(tmp_path: Path) -> None:
    html = tmp_path / "invite.html"
    html.write_text(INVITE_HTML, encoding="utf-8")

    saved = run_json("templates", "save", "--org", "1", "--user-type", "1",
                     "--subject", "Hi", "--html-file", str(html))  # fmt: skip
    assert saved == {
        "org_id": 1,
        "user_type_id": 1,
        "kind": "accept_invitation",
        "language": "en",
        "custom": True,
    }
    reset = run_json("templates", "reset", "--org", "1", "--user-type", "1")
    assert (reset["custom"], reset["reset"]) == (False, True)
    again = run_json("templates", "reset", "--org", "1", "--user-type", "1")
    assert again["reset"] is False


@pytest.mark.usefixtures("zylker")
def test_channels_resume_prints_json(cli_env: Path) -> None:
    engine = make_engine(Settings.from_env().database_url)
    with make_session_factory(engine)() as session:
        pauses.pause(session, 1, Channel.EMAIL, "ses_configuration", "unverified sender")
        session.commit()
    engine.dispose()

    resumed = run_json("channels", "resume", "--org", "1", "--channel", "email")

    assert resumed == {"org_id": 1, "channel": "email", "queued": 0}


@pytest.mark.parametrize(
    ("command", "names"),
    [
        (["invite"], ["--crm-user", "--inviter"]),
        (["users", "reinvite"], ["--crm-user", "--actor"]),
        (["users", "transfer"], ["--to-user-type", "--user-type", "--from-type"]),
        (["user-types", "delete"], ["--to-user-type", "--transfer-to"]),
    ],
)
def test_one_vocabulary_with_the_old_names_still_accepted(
    command: list[str], names: list[str]
) -> None:
    shown = " ".join(invoke(*command, "--help").output.split())
    for name in names:
        assert name in shown, (command, name)


def test_serve_help_lists_what_it_serves() -> None:
    shown = " ".join(invoke("serve", "--help").output.split())
    for path in ("/accept", "/confirm-email", "/s/<code>", "/unsubscribe", "/events", "/ops"):
        assert path in shown, path
