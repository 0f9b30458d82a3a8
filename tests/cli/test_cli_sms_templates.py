"""``portalflow sms-templates`` against a SQLite file: edit, import, map, approve, check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ..cli_runner import invoke

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures" / "dlt"
TEXTS = {
    "invitation": (
        "Dear {{ record.first_name }}, you are invited to the {{ portal.name }} portal. "
        "Accept within 7 days: {{ invite_url }} - Zylker",
        "1207170000000000101",
    ),
    "verification": (
        "{{ code }} is your verification code for the {{ portal.name }} portal. "
        "Do not share it. - Zylker",
        "1207170000000000102",
    ),
    "forgot_password": (
        "Reset your {{ portal.name }} portal password here: {{ reset_url }} "
        "The link expires in {{ expiry_hours }} hours. - Zylker",
        "1207170000000000103",
    ),
}


@pytest.fixture
def zylker(cli_env: Path, tmp_path: Path) -> Path:
    """A migrated database with one Indian org, Zylker."""
    assert run("db", "upgrade").exit_code == 0
    created = run("orgs", "create", "--name", "Zylker", "--domain", "zylker.com",
                  "--country", "IN", "--data-centre", "in")  # fmt: skip
    assert created.exit_code == 0, created.output
    return tmp_path


run = invoke


def run_json(*args: str, code: int = 0) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_the_whole_flow_to_sms_ready(zylker: Path) -> None:
    report = run_json("sms-templates", "import-dlt", str(FIXTURES / "jio-approved.csv"),
                      "--org", "1", code=1)  # fmt: skip
    assert (report["created"], report["rejected_rows_imported"]) == (4, 1)
    assert [error["line"] for error in report["errors"]] == [6]
    assert run_json("sms-templates", "list", "--org", "1")["ready"] is False

    for kind, (text, dlt_id) in TEXTS.items():
        edited = run("sms-templates", "edit", "--org", "1", "--kind", kind, "--text", text)
        assert edited.exit_code == 0, edited.output
        mapped = run("sms-templates", "map", "--org", "1", "--kind", kind, "--dlt-id", dlt_id)
        assert mapped.exit_code == 0 and "pending" in mapped.output, mapped.output
        approved = run("sms-templates", "approve", "--org", "1", "--kind", kind)
        assert approved.exit_code == 0, approved.output

    listing = run_json("sms-templates", "list", "--org", "1")
    assert listing["ready"] is True
    invitation = listing["kinds"][0]
    assert invitation["kind"] == "invitation" and invitation["pending"] is None
    assert invitation["in_use"]["dlt_template_id"] == "1207170000000000101"
    table = run("sms-templates", "list", "--org", "1")
    assert table.exit_code == 0 and "SMS ready" in table.output

    checked = run("sms-templates", "check", "--org", "1", "--kind", "invitation")
    assert checked.exit_code == 0, checked.output
    assert "gsm7, 1 part" in checked.output and "Dear Sage" in checked.output
    values = json.dumps({"record": {"first_name": "Bartholomew Montgomery-Fitzgerald"}})
    mismatch = run("sms-templates", "check", "--org", "1", "--kind", "invitation",
                   "--values", values)  # fmt: skip
    assert mismatch.exit_code == 1
    assert "is 33 characters; the cap is 30" in mismatch.stderr


def test_edit_from_a_file_and_an_edit_awaiting_approval(zylker: Path) -> None:
    run("sms-templates", "import-dlt", str(FIXTURES / "jio-approved.csv"), "--org", "1")
    text, dlt_id = TEXTS["verification"]
    body = zylker / "verify.txt"
    body.write_text(text, encoding="utf-8")
    assert run("sms-templates", "edit", "--org", "1", "--kind", "verification",
               "--file", str(body)).exit_code == 0  # fmt: skip
    run("sms-templates", "map", "--org", "1", "--kind", "verification", "--dlt-id", dlt_id)
    run("sms-templates", "approve", "--org", "1", "--kind", "verification")

    edited = run("sms-templates", "edit", "--org", "1", "--kind", "verification",
                 "--text", text.replace("Do not share it.", "Never share it."))  # fmt: skip
    assert "stays in use" in edited.output
    [_, verification, _] = run_json("sms-templates", "list", "--org", "1")["kinds"]
    assert verification["in_use"]["body"] == text
    assert verification["pending"]["verification"] is None  # not mapped yet

    refused = run("sms-templates", "map", "--org", "1", "--kind", "verification",
                  "--dlt-id", dlt_id)  # fmt: skip
    assert refused.exit_code == 2
    assert '"Never share it. - Zylker"' in refused.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["edit", "--kind", "invitation", "--text", "Hi {{ invite_url }}"], "- Zylker"),
        (["edit", "--kind", "invitation"], "exactly one of --text or --file"),
        (["map", "--kind", "invitation", "--dlt-id", "1207170000000000999"], "import the DLT"),
        (["approve", "--kind", "invitation"], "no invitation SMS template mapping"),
        (["check", "--kind", "invitation", "--values", "[1]"], "must be a JSON object"),
    ],
)
def test_refusals_are_clean(zylker: Path, args: list[str], needle: str) -> None:
    result = run("sms-templates", *args, "--org", "1")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.output


def test_a_file_that_is_not_a_dlt_export_is_fatal(zylker: Path) -> None:
    other = zylker / "contacts.csv"
    other.write_text("crm_id,email\n1,a@example.org\n", encoding="utf-8")
    result = run("sms-templates", "import-dlt", str(other), "--org", "1")
    assert result.exit_code == 2
    assert "found 'crm_id', 'email'" in result.stderr


def test_help_shows_examples() -> None:
    for command in ("list", "edit", "import-dlt", "map", "approve", "check"):
        result = run("sms-templates", command, "--help")
        assert result.exit_code == 0 and "portalflow sms-templates" in result.output


def test_edit_map_and_approve_print_json(zylker: Path) -> None:
    run_json("sms-templates", "import-dlt", str(FIXTURES / "jio-approved.csv"), "--org", "1",
             code=1)  # fmt: skip
    text, dlt_id = TEXTS["invitation"]

    edited = run_json("sms-templates", "edit", "--org", "1", "--kind", "invitation",
                      "--text", text)  # fmt: skip
    assert (edited["kind"], edited["unchanged"], edited["in_use"]) == ("invitation", False, False)
    mapped = run_json("sms-templates", "map", "--org", "1", "--kind", "invitation",
                      "--dlt-id", dlt_id)  # fmt: skip
    assert (mapped["dlt_id"], mapped["verification"]) == (dlt_id, "pending")
    approved = run_json("sms-templates", "approve", "--org", "1", "--kind", "invitation")
    assert (approved["verification"], approved["sms_ready"]) == ("approved", False)
