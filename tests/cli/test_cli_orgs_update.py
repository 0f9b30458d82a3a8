"""`orgs create` picks the data centre from the country; `orgs update` changes an org."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from portalflow.config import Settings
from portalflow.models import Org, Portal, make_engine, make_session_factory

from ..cli_runner import flat, run


def json_of(*args: str) -> Any:
    code, out = run(*args, "--json")
    assert code == 0, out
    return json.loads(out)


def create(name: str, country: str, *extra: str) -> dict[str, Any]:
    domain = f"{name.lower()}.example"
    return json_of("orgs", "create", "--name", name, "--domain", domain, "--country", country,
                   *extra)  # fmt: skip


@pytest.fixture
def upgraded(cli_env: Path) -> Path:
    assert run("db", "upgrade")[0] == 0
    return cli_env


@pytest.mark.usefixtures("upgraded")
@pytest.mark.parametrize(
    ("country", "data_centre"),
    [("IN", "in"), ("de", "eu"), ("GB", "eu"), ("NO", "eu"), ("NZ", "au"), ("JP", "jp"),
     ("CN", "cn"), ("CA", "ca"), ("US", "us"), ("BR", "us"), ("SA", "us")],
)  # fmt: skip
def test_the_data_centre_follows_the_country(country: str, data_centre: str) -> None:
    org = create("Zylker", country)
    assert (org["country"], org["data_centre"]) == (country.upper(), data_centre)
    code, out = run("orgs", "list")
    assert code == 0 and f"│ {data_centre} " in out


@pytest.mark.usefixtures("upgraded")
def test_an_explicit_data_centre_wins_and_countries_are_iso_3166() -> None:
    assert create("Zylker", "IN", "--data-centre", "us")["data_centre"] == "us"
    for bad in ("ZZ", "XX", "IND", "1N"):
        code, out = run("orgs", "create", "--name", "Bad", "--domain", "bad.example",
                        "--country", bad)  # fmt: skip
        assert code == 2 and "is not an ISO 3166-1 two-letter country code" in flat(out), out
    assert [o["name"] for o in json_of("orgs", "list")] == ["Zylker"]


def test_update_renames_and_changes_senders(upgraded: Path) -> None:
    org = create("Zylker", "IN", "--from-email", "portal@zylker-mail.com", "--from-name", "Z")
    create("Acme", "US")
    updated = json_of("orgs", "update", "--org", "1", "--name", "Zylker Corp",
                      "--portal-name", "Zylker Help", "--reply-to", "help@zylker-mail.com",
                      "--from-name", "", "--data-centre", "eu")  # fmt: skip
    assert updated["name"] == "Zylker Corp" and updated["portal_name"] == "Zylker Help"
    assert updated["portal_slug"] == org["portal_slug"] == "zylker"  # the name keeps the slug
    assert (updated["from_email"], updated["from_name"]) == ("portal@zylker-mail.com", None)
    assert (updated["reply_to"], updated["data_centre"]) == ("help@zylker-mail.com", "eu")

    code, out = run("orgs", "update", "--org", "1", "--portal-slug", "Acme", "--name", "X")
    assert code == 2 and "portal slug 'acme' is already taken" in flat(out)
    code, out = run("orgs", "update", "--org", "1", "--from-email", "not-an-address")
    assert code == 2 and "From" in out
    assert json_of("orgs", "list")[0]["name"] == "Zylker Corp"  # a refusal changes nothing

    moved = json_of("orgs", "update", "--org", "1", "--portal-slug", "Zylker Corp")
    assert moved["portal_slug"] == "zylker-corp"
    assert (
        json_of("orgs", "update", "--org", "1", "--portal-slug", "zylker-corp")["portal_slug"]
        == "zylker-corp"
    )  # its own slug is not "taken"
    code, out = run("orgs", "update", "--org", "9", "--name", "Nobody")
    assert code == 2 and "org 9 does not exist" in out


def test_a_trial_moves_to_a_paid_edition_keeping_its_portal(upgraded: Path) -> None:
    create("Tiny", "US", "--edition", "trial")
    url = Settings.from_env().database_url
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            portal_before = session.execute(select(Portal.id, Portal.slug)).one()
        assert (
            json_of("orgs", "update", "--org", "1", "--edition", "enterprise")["edition"]
            == "enterprise"
        )
        code, out = run("orgs", "update", "--org", "1", "--edition", "trial")
        assert code == 2 and "only a new org starts a trial" in out
        with make_session_factory(engine)() as session:
            assert session.execute(select(Portal.id, Portal.slug)).one() == portal_before
            org = session.get_one(Org, 1)
            assert org.deletion_scheduled_for is None and org.trial_started_at is not None
        # On a paid edition the org may add user types, which a trial may not.
        code, out = run("user-types", "add", "--org", "1", "--name", "Vendors",
                        "--module", "Vendors")  # fmt: skip
        assert code == 0, out
    finally:
        engine.dispose()
