"""The invite, bulk-runs and demo commands, embedded: SQLite, in-process broker, file outbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from portalflow.models import ReasonCode

from ..cli_runner import run


def test_invite_records_end_to_end(cli_env: Path, tmp_path: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    assert code == 0, out
    assert run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
               "--modules", "Contacts")[0] == 0  # fmt: skip
    records = tmp_path / "records.jsonl"
    records.write_text(
        '{"crm_id": "A1", "module": "Contacts", "first_name": "Ana", "email": "ana@example.org"}\n'
        '{"crm_id": "A2", "module": "Contacts", "first_name": "Bo", "email": "bo@acme.com"}\n',
        encoding="utf-8",
    )
    assert run("records", "import", str(records), "--org", "1")[0] == 0

    code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1",
                    "-r", "A1", "-r", "A2", "-r", "A3", "--language", "de", "--json")  # fmt: skip
    assert code == 1, out  # some invitees failed
    report = json.loads(out[out.index("{") :])
    assert (report["sent"], report["failed"], report["status"]) == (1, 2, "completed")
    assert report["failed_by_reason"] == {"company_domain": 1, "record_missing": 1}
    [eml] = list((cli_env / "outbox").glob("*.eml"))
    assert b"Ana" in eml.read_bytes()

    code, out = run("bulk-runs", "show", "1", "--json")
    assert code == 0 and json.loads(out)["sent"] == 1
    code, out = run("bulk-runs", "show", "1", "--org", "2")
    assert code == 2 and "bulk run 1 does not exist in org 2" in out


def test_invite_refuses_bad_requests_cleanly(cli_env: Path) -> None:
    run("db", "upgrade")
    run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    for args, needle in (
        (["--user-type", "7", "--inviter", "1", "-r", "X"], "user type 7 does not exist"),
        (["--user-type", "1", "--inviter", "1"], "choose exactly one of"),
        (["--user-type", "1", "--inviter", "1", "--all", "-r", "X"], "choose exactly one of"),
    ):
        code, out = run("invite", "--org", "1", *args)
        assert code == 2, out
        assert needle in out and "Traceback" not in out


def test_worker_needs_a_broker_url(cli_env: Path) -> None:
    code, out = run("worker")
    assert code == 2 and "PORTALFLOW_BROKER_URL is not set" in out


def test_demo_json_reports_every_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTALFLOW_")}
    result = subprocess.run(
        [sys.executable, "-m", "portalflow.cli", "demo", "--json", "--contacts", "120"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {"sent", "failed"}
    send_time = {"dlt_mismatch", "insufficient_sms_credits"}
    assert set(summary["failed"]) == {code.value for code in ReasonCode} | send_time
    outbox = tmp_path / "var" / "demo" / "outbox"
    emails, texts = list(outbox.glob("*.eml")), list((outbox / "sms").glob("*.json"))
    assert len(texts) == 19
    assert summary["sent"] == len(emails) + len(texts) > 100


def test_templates_save_refuse_and_reset(cli_env: Path, tmp_path: Path) -> None:
    run("db", "upgrade")
    run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    good, bad = tmp_path / "good.html", tmp_path / "bad.html"
    good.write_text('<p>Hi {{ record.first_name }}, <a href="{{ invite_url }}">join</a></p>')
    bad.write_text("<p>Hi {{ record.first_name }}, no link here</p>")
    base = ["--org", "1", "--user-type", "1", "--language", "fr"]

    code, out = run("templates", "save", *base, "--subject", "Bonjour", "--html-file", str(bad))
    assert code == 2 and "invite_url" in out
    code, out = run("templates", "show", *base, "--json")
    assert json.loads(out)["is_custom"] is False

    code, out = run("templates", "save", *base, "--subject", "Bonjour", "--html-file", str(good))
    assert code == 0, out
    code, out = run("templates", "show", *base, "--json")
    assert json.loads(out)["subject"] == "Bonjour"

    code, out = run("templates", "reset", *base)
    assert code == 0 and "Reset" in out
    code, out = run("templates", "show", *base, "--json")
    shown = json.loads(out)
    assert shown["is_custom"] is False and "invite_url" in shown["html_body"]
