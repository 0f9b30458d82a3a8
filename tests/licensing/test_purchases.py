"""Licence purchases: effective dates, what is in force, refusals, history, alert settings."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portalflow.models import Org, PortalUserType
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.licensing.purchases import (
    history,
    licences_in_force,
    licences_in_force_for_org,
    record_purchase,
    set_alert_settings,
)
from portalflow.pipelines.tenancy import orgs

from ..cli_runner import invoke, run
from ..factories import client_portal, make_org
from ..sql import counting_statements

JULY = date(2025, 7, 1)


@pytest.fixture
def org(session: Session) -> Org:
    return make_org(session)


@pytest.fixture
def vendors(session: Session, org: Org) -> PortalUserType:
    return orgs.add_user_type(session, org.id, name="Vendors", module="Vendors")


def test_effective_dates_decide_what_is_in_force(
    session: Session, org: Org, vendors: PortalUserType
) -> None:
    assert licences_in_force(session, vendors.id, JULY) == 0
    record_purchase(session, org.id, vendors.id, 1500, JULY, note="PO 4711")
    record_purchase(session, org.id, vendors.id, 800, date(2025, 9, 1))  # reduced from Sept

    assert licences_in_force(session, vendors.id, JULY - timedelta(days=1)) == 0
    assert licences_in_force(session, vendors.id, JULY) == 1500
    assert licences_in_force(session, vendors.id, date(2025, 8, 31)) == 1500
    assert licences_in_force(session, vendors.id, date(2025, 9, 1)) == 800
    assert licences_in_force(session, vendors.id, date(2026, 1, 1)) == 800


def test_a_future_purchase_is_not_in_force_today(
    session: Session, org: Org, vendors: PortalUserType
) -> None:
    today = date.today()
    record_purchase(session, org.id, vendors.id, 100, today - timedelta(days=10))
    record_purchase(session, org.id, vendors.id, 5000, today + timedelta(days=1))
    assert licences_in_force(session, vendors.id, today) == 100
    assert licences_in_force(session, vendors.id, today + timedelta(days=1)) == 5000


def test_the_purchase_recorded_last_wins_on_the_same_day(
    session: Session, org: Org, vendors: PortalUserType
) -> None:
    record_purchase(session, org.id, vendors.id, 300, JULY)
    record_purchase(session, org.id, vendors.id, 0, JULY, note="cancelled")
    assert licences_in_force(session, vendors.id, JULY) == 0
    assert licences_in_force_for_org(session, org.id, JULY) == {vendors.id: 0}


def test_org_wide_licences_in_force_in_one_query(
    session: Session, engine: Engine, org: Org, vendors: PortalUserType
) -> None:
    leads = orgs.add_user_type(session, org.id, name="Leads", module="Leads")
    partners = orgs.add_user_type(session, org.id, name="Partners", module="Partners")
    record_purchase(session, org.id, vendors.id, 1500, JULY)
    record_purchase(session, org.id, vendors.id, 800, date(2025, 9, 1))
    record_purchase(session, org.id, leads.id, 40, date(2025, 8, 1))
    other = make_org(session, name="Other", company_domain="other.com")
    other_type = orgs.add_user_type(session, other.id, name="Vendors", module="Vendors")
    record_purchase(session, other.id, other_type.id, 9999, JULY)
    session.flush()

    with counting_statements(engine) as statements:
        in_july = licences_in_force_for_org(session, org.id, JULY)
    assert len(statements) == 1
    # Every paid type, with 0 where nothing is in force; the Client Portal needs no licences.
    assert in_july == {vendors.id: 1500, leads.id: 0, partners.id: 0}
    assert client_portal(session, org).id not in in_july
    assert licences_in_force_for_org(session, org.id, date(2025, 9, 15)) == {
        vendors.id: 800,
        leads.id: 40,
        partners.id: 0,
    }
    assert licences_in_force_for_org(session, other.id, JULY) == {other_type.id: 9999}
    assert licences_in_force_for_org(session, 999_999, JULY) == {}


def test_the_client_portal_is_free(session: Session, org: Org) -> None:
    with pytest.raises(InvalidInput, match="Client Portal, which is free"):
        record_purchase(session, org.id, client_portal(session, org).id, 10, JULY)


def test_a_trial_org_cannot_buy(session: Session) -> None:
    trial = make_org(session, edition="trial")
    paid = make_org(session, name="Paid", company_domain="paid.com")
    vendors = orgs.add_user_type(session, paid.id, name="Vendors", module="Vendors")
    with pytest.raises(InvalidInput, match="trial"):
        record_purchase(session, trial.id, client_portal(session, trial).id, 5, JULY)
    # A paid type of another org is not the trial org's to buy for either.
    with pytest.raises(NotFound):
        record_purchase(session, trial.id, vendors.id, 5, JULY)


@pytest.mark.parametrize("quantity", [-1, 2.5, True])
def test_bad_quantities_are_refused(
    session: Session, org: Org, vendors: PortalUserType, quantity: Any
) -> None:
    with pytest.raises(InvalidInput, match="quantity"):
        record_purchase(session, org.id, vendors.id, quantity, JULY)
    assert history(session, org.id) == []


def test_unknown_org_or_type_is_not_found(
    session: Session, org: Org, vendors: PortalUserType
) -> None:
    with pytest.raises(NotFound, match="org 999999"):
        record_purchase(session, 999_999, vendors.id, 5, JULY)
    with pytest.raises(NotFound, match="user type 999999"):
        record_purchase(session, org.id, 999_999, 5, JULY)
    with pytest.raises(NotFound):
        history(session, org.id, 999_999)


def test_history_is_newest_first(session: Session, org: Org, vendors: PortalUserType) -> None:
    leads = orgs.add_user_type(session, org.id, name="Leads", module="Leads")
    first = record_purchase(session, org.id, vendors.id, 100, JULY)
    third = record_purchase(session, org.id, vendors.id, 300, date(2025, 9, 1), note=" up ")
    second = record_purchase(session, org.id, leads.id, 200, date(2025, 8, 1))
    assert history(session, org.id) == [third, second, first]
    assert history(session, org.id, vendors.id) == [third, first]
    assert (third.note, first.note) == ("up", None)


def test_alert_settings(session: Session, org: Org) -> None:
    assert (org.admin_email, org.near_limit_percent) == (None, 90)
    set_alert_settings(session, org.id, admin_email=" Admin@Zylker.com ", near_limit_percent=80)
    assert (org.admin_email, org.near_limit_percent) == ("Admin@zylker.com", 80)
    set_alert_settings(session, org.id, near_limit_percent=100)
    assert (org.admin_email, org.near_limit_percent) == ("Admin@zylker.com", 100)
    for percent in (0, 101, -5):
        with pytest.raises(InvalidInput, match="1 to 100"):
            set_alert_settings(
                session, org.id, admin_email="x@zylker.com", near_limit_percent=percent
            )
    with pytest.raises(InvalidInput, match="admin email"):
        set_alert_settings(session, org.id, admin_email="not-an-address", near_limit_percent=50)
    assert (org.admin_email, org.near_limit_percent) == ("Admin@zylker.com", 100)  # untouched
    set_alert_settings(session, org.id, admin_email="")
    assert org.admin_email is None
    with pytest.raises(NotFound):
        set_alert_settings(session, 999_999, near_limit_percent=50)


# -- CLI ---------------------------------------------------------------------------------------


def _json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_purchase_history_and_settings(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US",
                    "--edition", "enterprise")  # fmt: skip
    assert code == 0, out
    code, out = run("user-types", "add", "--org", "1", "--name", "Vendors", "--module", "Vendors")
    assert code == 0, out

    bought = _json("licences", "purchase", "--org", "1", "--user-type", "2", "--quantity",
                   "1500", "--effective", "2025-07-01", "--note", "PO 4711")  # fmt: skip
    assert bought["quantity"] == 1500 and bought["user_type"] == "Vendors"
    assert bought["effective_from"] == "2025-07-01" and bought["in_force_today"] == 1500
    code, out = run("licences", "purchase", "--org", "1", "--user-type", "2", "--quantity", "800",
                    "--effective", "2025-09-01")  # fmt: skip
    assert code == 0 and "Licence purchase recorded" in out

    rows = _json("licences", "history", "--org", "1", "--user-type", "2")
    assert [(row["quantity"], row["effective_from"]) for row in rows] == [
        (800, "2025-09-01"),
        (1500, "2025-07-01"),
    ]
    code, out = run("licences", "history", "--org", "1")
    assert code == 0 and "PO 4711" in out and "1,500" in out

    result = invoke("licences", "purchase", "--org", "1", "--user-type", "1", "--quantity", "5",
                    "--effective", "2025-07-01")  # fmt: skip
    assert result.exit_code == 2 and "Client Portal" in result.stderr
    result = invoke("licences", "purchase", "--org", "1", "--user-type", "2", "--quantity", "5",
                    "--effective", "July 1st")  # fmt: skip
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr

    settings = _json("licences", "settings", "--org", "1", "--admin-email", "admin@acme.com",
                     "--near-limit-percent", "75")  # fmt: skip
    assert (settings["admin_email"], settings["near_limit_percent"]) == ("admin@acme.com", 75)
    assert _json("licences", "settings", "--org", "1")["near_limit_percent"] == 75
    result = invoke("licences", "settings", "--org", "1", "--near-limit-percent", "0")
    assert result.exit_code == 2 and "1 to 100" in result.stderr
    code, out = run("licences", "settings", "--org", "1")
    assert code == 0 and "admin@acme.com" in out and "75%" in out
