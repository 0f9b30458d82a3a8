"""`bulk-runs list` finds runs; `users list` / `users show` say who a user is and what happened."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from portalflow.config import Settings
from portalflow.models import BulkRun, make_engine

from ..cli_runner import flat, run


def json_of(*args: str) -> Any:
    code, out = run(*args, "--json")
    assert code in (0, 1), out
    return json.loads(out[out.index("{") if out.lstrip()[0] == "{" else out.index("[") :])


@pytest.fixture
def org(cli_env: Path, tmp_path: Path) -> None:
    """Org 1 (enterprise) with Vendors (type 2, 5 licences), inviter 1, five records."""
    assert run("db", "upgrade")[0] == 0
    assert run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US",
               "--edition", "enterprise")[0] == 0  # fmt: skip
    assert run("user-types", "add", "--org", "1", "--name", "Vendors", "--module", "Vendors",
               "--licences", "5")[0] == 0  # fmt: skip
    assert run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
               "--modules", "Contacts,Vendors")[0] == 0  # fmt: skip
    records = tmp_path / "records.csv"
    records.write_text(
        "crm_id,module,first_name,last_name,email\n"
        "C1,Contacts,Ana,Lima,ana@example.org\n"
        "C2,Contacts,Bo,,bo@example.org\n"
        "C3,Contacts,Cy,Ng,cy@acme.com\n"
        "V1,Vendors,Vi,Ray,vi@example.org\n",
        encoding="utf-8",
    )
    assert run("records", "import", str(records), "--org", "1")[0] == 0


def invite(user_type: str, *crm_ids: str) -> int:
    ids = [arg for crm_id in crm_ids for arg in ("-r", crm_id)]
    return run("invite", "--org", "1", "--user-type", user_type, "--inviter", "1", *ids)[0]


@pytest.mark.usefixtures("org")
def test_bulk_runs_list_filters_sorts_and_pages() -> None:
    assert invite("1", "C1", "C3") == 1  # C3 is on the company domain
    assert invite("2", "V1") == 0
    assert invite("1", "C2") == 0
    assert run("users", "remove", "--org", "1", "--user-type", "1", "--actor", "1",
               "--user", "1")[0] == 0  # fmt: skip
    engine = make_engine(Settings.from_env().database_url)
    with engine.begin() as connection:  # run 1 started long ago
        connection.execute(
            update(BulkRun)
            .where(BulkRun.id == 1)
            .values(created_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    engine.dispose()

    listed = json_of("bulk-runs", "list")
    assert [r["id"] for r in listed["runs"]] == [4, 3, 2, 1] and listed["total"] == 4
    assert listed["runs"][-1] | {"created_at": "", "finished_at": ""} == {
        "id": 1, "org_id": 1, "user_type_id": 1, "user_type": "Client Portal",
        "action": "invite", "status": "completed", "requested": 2, "sent": 1, "failed": 1,
        "queued": 0, "inviter_id": 1, "created_at": "", "finished_at": "",
    }  # fmt: skip
    assert [r["id"] for r in json_of("bulk-runs", "list", "--user-type", "2")["runs"]] == [2]
    assert [r["id"] for r in json_of("bulk-runs", "list", "--action", "remove")["runs"]] == [4]
    assert [r["id"] for r in json_of("bulk-runs", "list", "--since", "2021-01-01")["runs"]] == [
        4, 3, 2,
    ]  # fmt: skip
    assert json_of("bulk-runs", "list", "--org", "2")["runs"] == []
    assert json_of("bulk-runs", "list", "--status", "running")["total"] == 0
    page = json_of("bulk-runs", "list", "--limit", "2", "--page", "2")
    assert ([r["id"] for r in page["runs"]], page["offset"]) == ([2, 1], 2)
    assert [r["id"] for r in json_of("bulk-runs", "list", "--limit", "1", "--offset", "1")[
        "runs"
    ]] == [3]  # fmt: skip

    code, out = run("bulk-runs", "list", "--csv", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["id"], r["user_type"]) for r in rows] == [
        ("4", "Client Portal"), ("3", "Client Portal"),
    ]  # fmt: skip
    code, out = run("bulk-runs", "list", "--limit", "3")
    assert code == 0 and "Bulk runs 1-3 of 4" in out and "--offset 3" in flat(out)
    code, out = run("bulk-runs", "list", "--json", "--csv")
    assert code == 2 and "choose one of --json or --csv" in out
    code, out = run("bulk-runs", "list", "--page", "2", "--offset", "1")
    assert code == 2 and "choose one of --page or --offset" in out


@pytest.mark.usefixtures("org")
def test_users_list_and_show_say_who_and_what_happened() -> None:
    assert invite("1", "C1", "C2") == 0
    assert invite("1", "C1") == 1  # already a portal user: refused, and in C1's history
    users = json_of("users", "list", "--org", "1")
    assert [(u["id"], u["crm_id"], u["name"]) for u in users] == [(1, "C1", "Ana Lima"),
                                                                  (2, "C2", "Bo")]  # fmt: skip
    code, out = run("users", "list", "--org", "1")
    assert code == 0 and "Ana Lima" in out and "C2" in out

    shown = json_of("users", "show", "1")
    assert (shown["crm_id"], shown["status"], shown["holds_licence_seat"]) == (
        "C1",
        "invited",
        True,
    )
    first, second = shown["invitations"]
    assert (first["channel"], first["status"], first["failure_code"]) == ("email", "sent", None)
    assert first["provider_message_id"] and first["sent_at"] and first["bulk_run_id"] == 1
    assert (second["status"], second["failure_code"]) == ("failed", "already_portal_user")
    code, out = run("users", "show", "1")
    assert code == 0 and "holds a licence seat" in out and "already_portal_user" in out

    assert run("users", "remove", "--org", "1", "--user-type", "1", "--actor", "1",
               "--user", "1")[0] == 0  # fmt: skip
    assert json_of("users", "show", "1")["holds_licence_seat"] is False
    code, out = run("users", "show", "1", "--org", "2")
    assert code == 2 and "portal user 1 does not exist in org 2" in out
    code, out = run("users", "show", "99")
    assert code == 2 and "portal user 99 does not exist" in out
