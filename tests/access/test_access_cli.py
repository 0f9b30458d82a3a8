"""`portalflow access`: define, show, assign and explain through the real command."""

from __future__ import annotations

import json
from pathlib import Path

from portalflow.config import Settings
from portalflow.models import make_engine, make_session_factory

from ..cli_runner import flat, run
from .access_setup import Portal


def test_define_show_assign_and_explain(cli_env: Path, tmp_path: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    engine = make_engine(Settings.from_env().database_url)
    with make_session_factory(engine)() as session:
        portal = Portal(session)
        patricia = portal.record("C-1", "Contacts", first_name="Patricia")
        portal.record("Q-1", "Quotes", Contact_Name="C-1", Quote_Stage="Approved")
        portal.record("Q-2", "Quotes", Contact_Name="C-1", Quote_Stage="Negotiating")
        user_id, org, user_type = portal.user(patricia).id, portal.org.id, portal.customers.id
        session.commit()
    engine.dispose()
    org_args = ("--org", str(org), "--user-type", str(user_type))

    rule = tmp_path / "rule.json"
    rule.write_text(
        json.dumps(
            {
                "all": [
                    {"lookup": "Contact_Name"},
                    {"field": "Quote_Stage", "op": "equals", "value": "Aproved"},
                ]
            }
        )
    )
    code, out = run("access", "expose", *org_args, "--module", "Quotes", "--rule", f"@{rule}")
    assert code == 2
    assert "invalid_value at rule.all[1]" in flat(out) and "not an option" in flat(out)

    rule.write_text(rule.read_text().replace("Aproved", "approved"))
    code, out = run("access", "expose", *org_args, "--module", "Quotes", "--rule", f"@{rule}",
                    "--allow", "edit", "--field", "Internal_Note=hidden")  # fmt: skip
    assert code == 0, out
    assert "Contact_Name links to the user's own Contacts record AND Quote_Stage equals" in flat(
        out
    )

    code, out = run("access", "show", *org_args)
    assert code == 0 and "Quotes" in out and "Internal_Note=hidden" in flat(out)

    code, out = run("access", "sets", "define", *org_args, "--name", "Readers",
                    "--modules", '{"Quotes": {"edit": false}}')  # fmt: skip
    assert code == 0, out
    code, out = run("access", "assign", "--org", str(org), "--set", "Readers", str(user_id))
    assert code == 0 and "1 portal user(s) now hold permission set Readers" in flat(out)

    code, out = run("access", "explain", "--user", str(user_id), "--module", "Quotes",
                    "--record", "Q-2")  # fmt: skip
    assert code == 0 and "not visible" in out and "rule.all[1]" in out
    code, out = run("access", "explain", "--user", str(user_id), "--module", "Quotes",
                    "--record", "Q-1", "--json")  # fmt: skip
    assert code == 0, out
    answer = json.loads(out)
    assert answer["visible"] is True and answer["permission_set"] == "Readers"
    assert answer["permissions"] == {"edit": False, "delete": False}

    code, out = run("access", "indexes", *org_args, "--module", "Quotes")
    assert code == 0 and "(fields ->> 'Contact_Name')" in out


def test_fields_unexpose_and_set_deletion(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    engine = make_engine(Settings.from_env().database_url)
    with make_session_factory(engine)() as session:
        portal = Portal(session)
        user_id = portal.user(portal.record("C-1", "Contacts")).id
        org, user_type = str(portal.org.id), str(portal.customers.id)
        session.commit()
    engine.dispose()

    code, out = run("access", "fields", "set", "--org", org, "--module", "Cases",
                    '[{"name": "Status", "type": "picklist"}]')  # fmt: skip
    assert code == 2 and "picklist Status needs options" in flat(out)
    code, out = run("access", "fields", "set", "--org", org, "--module", "Cases",
                    '[{"name": "Subject", "type": "text"}, {"name": "Patient_Notes", '
                    '"type": "text", "ephi": true}]')  # fmt: skip
    assert code == 0 and "2 fields saved" in out
    code, out = run("access", "fields", "show", "--org", org, "--module", "Cases", "--json")
    assert [f["ephi"] for f in json.loads(out)["Cases"]] == [False, True]

    code, out = run("access", "expose", "--org", org, "--user-type", user_type,
                    "--module", "Cases", "--public")  # fmt: skip
    assert code == 0 and "public" in out
    assert run("access", "unexpose", "--org", org, "--user-type", user_type, "--module",
               "Cases")[0] == 0  # fmt: skip
    code, out = run("access", "unexpose", "--org", org, "--user-type", user_type, "--module",
                    "Cases")  # fmt: skip
    assert code == 2 and "not exposed" in flat(out)

    assert run("access", "sets", "define", "--org", org, "--user-type", user_type,
               "--name", "Plain")[0] == 0  # fmt: skip
    assert run("access", "assign", "--org", org, "--set", "Plain", str(user_id))[0] == 0
    code, out = run("access", "assign", "--org", org, str(user_id))
    assert code == 2 and "give --set NAME, or --clear" in flat(out)
    code, out = run("access", "sets", "delete", "--org", org, "--name", "Plain")
    assert code == 0 and "1 user(s) held it" in flat(out)
