"""Slab pricing: exact cents at every boundary, price lists as data, `licences quote`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from portalflow.config import Settings
from portalflow.models import Org, make_engine, make_session_factory
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.licensing.pricing import (
    STANDARD_SLABS,
    Quote,
    Slab,
    cents_to_usd,
    quote,
    slabs_from_data,
    slabs_to_data,
)

from ..cli_runner import invoke, run


@pytest.mark.parametrize(
    ("users", "cents"),
    [
        (0, 0),
        (1, 300),
        (999, 999 * 300),
        (1000, 300_000),
        (1001, 300_000 + 200),
        (9999, 300_000 + 8999 * 200),
        (10_000, 300_000 + 1_800_000),
        (10_001, 300_000 + 1_800_000 + 100),
    ],
)
def test_every_slab_boundary(users: int, cents: int) -> None:
    result = quote(users)
    assert result.monthly_cents == cents
    assert sum(slab["users"] for slab in result.slabs) == users
    assert sum(slab["cents"] for slab in result.slabs) == cents


@pytest.mark.parametrize(
    ("users", "usd"), [(500, "1500.00"), (5000, "11000.00"), (12_000, "23000.00")]
)
def test_the_seed_examples(users: int, usd: str) -> None:
    assert cents_to_usd(quote(users).monthly_cents) == usd
    assert quote(users).monthly_usd == usd


def test_a_quote_lists_the_slabs_it_used() -> None:
    assert quote(12_000) == Quote(
        users=12_000,
        monthly_cents=2_300_000,
        slabs=[
            {"from": 1, "to": 1000, "users": 1000, "cents_per_user": 300, "cents": 300_000},
            {"from": 1001, "to": 10_000, "users": 9000, "cents_per_user": 200, "cents": 1_800_000},
            {"from": 10_001, "to": None, "users": 2000, "cents_per_user": 100, "cents": 200_000},
        ],
    )
    assert quote(500).slabs == [
        {"from": 1, "to": 1000, "users": 500, "cents_per_user": 300, "cents": 150_000}
    ]
    assert quote(0).slabs == []


@pytest.mark.parametrize("users", [-1, -1000, 1.5, True])
def test_bad_user_counts_are_refused(users: Any) -> None:
    with pytest.raises(InvalidInput, match="users"):
        quote(users)


def test_cents_to_usd_is_exact() -> None:
    assert cents_to_usd(0) == "0.00"
    assert cents_to_usd(5) == "0.05"
    assert cents_to_usd(123_456_789_012_345_678) == "1234567890123456.78"
    assert Decimal(cents_to_usd(2_300_000)) == Decimal("23000")
    with pytest.raises(InvalidInput):
        cents_to_usd(1.5)  # type: ignore[arg-type]


def test_slabs_from_data_default_and_custom() -> None:
    assert slabs_from_data(None) == STANDARD_SLABS
    custom = slabs_from_data(
        [{"up_to": 100, "cents": 500}, {"up_to": 200, "cents": 250}, {"up_to": None, "cents": 0}]
    )
    assert custom == (Slab(100, 500), Slab(200, 250), Slab(None, 0))
    assert quote(100, custom).monthly_cents == 50_000
    assert quote(150, custom).monthly_cents == 50_000 + 50 * 250
    assert quote(1_000_000, custom).monthly_cents == 50_000 + 25_000  # free above 200
    assert quote(7, slabs_from_data([{"up_to": None, "cents": 99}])).monthly_cents == 693
    assert slabs_from_data(slabs_to_data(STANDARD_SLABS)) == STANDARD_SLABS


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "at least one slab"),
        ({"up_to": None, "cents": 1}, "must be a list"),
        ([{"up_to": 10, "cents": 1}], "last slab must be unbounded"),
        ([{"up_to": None, "cents": 1}, {"up_to": None, "cents": 1}], "only the last slab"),
        ([{"up_to": 10, "cents": 1}, {"up_to": 10, "cents": 1}, {"up_to": None, "cents": 1}],
         "bounds ascend"),
        ([{"up_to": 10, "cents": 1}, {"up_to": 5, "cents": 1}, {"up_to": None, "cents": 1}],
         "bounds ascend"),
        ([{"up_to": 0, "cents": 1}, {"up_to": None, "cents": 1}], "up_to 0"),
        ([{"up_to": 10, "cents": -1}, {"up_to": None, "cents": 1}], "cents -1"),
        ([{"up_to": 10, "cents": 2.5}, {"up_to": None, "cents": 1}], "cents 2.5"),
        ([{"up_to": "10", "cents": 1}, {"up_to": None, "cents": 1}], "up_to '10'"),
        ([{"up_to": None}], "needs both up_to and cents"),
        ([{"up_to": None, "cents": 1, "usd": 3}], "unknown keys: usd"),
        (["3 dollars"], "must be an object"),
    ],
)  # fmt: skip
def test_bad_slab_data_is_refused(data: Any, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        slabs_from_data(data)


def test_quote_validates_slabs_given_in_code() -> None:
    with pytest.raises(InvalidInput, match="unbounded"):
        quote(5, (Slab(10, 100),))


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_quote_json_has_the_exact_shape(cli_env: Path) -> None:
    result = invoke("licences", "quote", "12000", "--json")
    assert result.exit_code == 0, result.output
    assert '"monthly_price_usd": 23000.00,' in result.stdout  # written from Decimal, 2 places
    document = json.loads(result.stdout, parse_float=Decimal)
    assert list(document) == ["users", "monthly_price_usd", "slabs"]
    assert document["users"] == 12_000
    assert document["monthly_price_usd"] == Decimal("23000.00")
    assert document["slabs"] == quote(12_000).slabs

    for users, usd in [("500", "1500.00"), ("5000", "11000.00"), ("0", "0.00")]:
        result = invoke("licences", "quote", users, "--json")
        assert result.exit_code == 0, result.output
        parsed = json.loads(result.stdout, parse_float=Decimal)
        assert parsed["monthly_price_usd"] == Decimal(usd)
        assert f'"monthly_price_usd": {usd},' in result.stdout


def test_cli_quote_table(cli_env: Path) -> None:
    code, out = run("licences", "quote", "12000")
    assert code == 0, out
    for text in ["1 - 1,000", "1,001 - 10,000", "10,001 +", "$18,000.00", "total", "$23,000.00"]:
        assert text in out


def test_cli_quote_refuses_negative_users(cli_env: Path) -> None:
    result = invoke("licences", "quote", "--", "-5")
    assert result.exit_code == 2
    assert "users -5 must be a whole number >= 0" in result.stderr


def test_cli_quote_with_an_orgs_own_slabs(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    assert code == 0, out
    engine = make_engine(Settings.from_env().database_url)
    try:
        with make_session_factory(engine)() as session:
            org = session.get(Org, 1)
            assert org is not None
            org.price_slabs = [{"up_to": 10, "cents": 1000}, {"up_to": None, "cents": 150}]
            session.commit()
        result = invoke("licences", "quote", "12", "--org", "1", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout, parse_float=Decimal)["monthly_price_usd"] == Decimal(
            "103.00"
        )
        code, out = run("licences", "quote", "12", "--org", "1")
        assert code == 0 and "$10.00" in out and "$103.00" in out

        with make_session_factory(engine)() as session:
            org = session.get(Org, 1)
            assert org is not None
            org.price_slabs = [{"up_to": 10, "cents": 1000}]
            session.commit()
        result = invoke("licences", "quote", "12", "--org", "1")
        assert result.exit_code == 2
        assert "last slab must be unbounded" in result.stderr
    finally:
        engine.dispose()

    result = invoke("licences", "quote", "12", "--org", "99")
    assert result.exit_code == 2 and "org 99 does not exist" in result.stderr


def test_the_old_spelling_of_the_group_still_works_but_is_not_listed(cli_env: Path) -> None:
    old = invoke("licenses", "quote", "12000", "--json")
    assert old.exit_code == 0, old.output
    assert json.loads(old.output) == json.loads(
        invoke("licences", "quote", "12000", "--json").output
    )
    listing = invoke("--help").output
    assert "licences" in listing and "licenses" not in listing
