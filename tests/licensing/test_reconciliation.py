"""Nightly licence reconciliation: recount, fix counters, price, flag, report, alert, email."""

from __future__ import annotations

import email
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from portalflow.cli import licence_reports
from portalflow.config import Settings
from portalflow.models import (
    CrmRecord,
    LicenceAlert,
    LicenceReport,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
)
from portalflow.pipelines.licensing import licence_alerts, purchases, reconciliation
from portalflow.pipelines.licensing.reconciliation import ReconcileSummary, catch_up, reconcile
from portalflow.pipelines.tenancy import orgs
from portalflow.workers import licence_actors, runtime

from ..factories import client_portal, make_org

DAY = date(2026, 11, 23)
CONFIRMED = PortalUserStatus.CONFIRMED
_record_numbers = itertools.count(1)


def add_users(
    session: Session, org: Org, user_type: PortalUserType, *statuses: PortalUserStatus
) -> None:
    records = []
    for _ in statuses:
        number = next(_record_numbers)
        records.append(
            CrmRecord(
                org_id=org.id,
                crm_id=f"R{number}",
                module=user_type.module,
                email=f"user{number}@customer.example.org",
            )
        )
    session.add_all(records)
    session.flush()
    session.add_all(
        PortalUser(
            org_id=org.id,
            record_id=record.id,
            user_type_id=user_type.id,
            status=status,
            email=record.email,
        )
        for record, status in zip(records, statuses, strict=True)
    )
    session.flush()


def paid_type(
    session: Session, org: Org, name: str = "Vendors", licences: int | None = None, **kw: Any
) -> PortalUserType:
    user_type = orgs.add_user_type(session, org.id, name=name, module=name)
    if licences is not None:
        buy(session, user_type, licences, kw.get("effective_from", DAY - timedelta(days=60)))
    return user_type


def buy(session: Session, user_type: PortalUserType, quantity: int, effective_from: date) -> None:
    purchases.record_purchase(session, user_type.org_id, user_type.id, quantity, effective_from)


def report_of(session: Session, org: Org, day: date = DAY) -> LicenceReport:
    session.expire_all()
    return session.scalars(
        select(LicenceReport).where(LicenceReport.org_id == org.id, LicenceReport.day == day)
    ).one()


def detail_of(report: LicenceReport, user_type: PortalUserType) -> dict[str, Any]:
    return next(d for d in report.details if d["user_type_id"] == user_type.id)


def alerts_of(session: Session, org: Org, kind: str | None = None) -> list[LicenceAlert]:
    found = licence_alerts.list_alerts(session, org.id)
    return [alert for alert in found if kind is None or alert.kind == kind]


def trial_start(days_before: int, day: date = DAY) -> datetime:
    start = day - timedelta(days=days_before)
    return datetime(start.year, start.month, start.day, 9, 30, tzinfo=UTC)


@pytest.fixture
def org(session: Session) -> Org:
    return make_org(session)


def test_deactivated_and_removed_users_hold_no_licence(session: Session, org: Org) -> None:
    portal = client_portal(session, org)
    vendors = paid_type(session, org, licences=5)
    add_users(
        session,
        org,
        portal,
        CONFIRMED,
        PortalUserStatus.INVITED,
        PortalUserStatus.LOGIN_SUSPENDED,
        PortalUserStatus.DEACTIVATED,
        PortalUserStatus.REMOVED,
    )
    add_users(session, org, vendors, CONFIRMED, CONFIRMED, PortalUserStatus.DEACTIVATED)
    session.commit()

    summary = reconcile(session, DAY)

    assert summary.orgs == 1 and summary.reports_written == 1
    report = report_of(session, org)
    assert detail_of(report, portal)["holders"] == 3
    assert detail_of(report, portal)["licences"] == 10_000
    assert detail_of(report, vendors)["holders"] == 2
    assert (report.holders, report.licences) == (2, 5)  # paid types only
    assert report.monthly_price_cents == 1_500  # 5 licences at $3
    assert not report.overage
    session.refresh(vendors)
    assert vendors.holders_cached == 2


def test_a_corrupted_counter_is_corrected(session: Session, org: Org) -> None:
    portal = client_portal(session, org)
    vendors = paid_type(session, org, licences=10)
    add_users(session, org, portal, CONFIRMED, CONFIRMED)
    add_users(session, org, vendors, CONFIRMED)
    portal.holders_cached = 2  # right
    vendors.holders_cached = 999  # drifted
    session.commit()

    summary = reconcile(session, DAY)

    assert summary.counters_corrected == 1
    report = report_of(session, org)
    assert report.counters_corrected == 1
    assert detail_of(report, vendors)["cached"] == 999
    assert session.get(PortalUserType, vendors.id).holders_cached == 1
    assert session.get(PortalUserType, portal.id).holders_cached == 2
    assert reconcile(session, DAY).counters_corrected == 0


def test_reconciling_a_day_twice_gives_the_same_report(session: Session, org: Org) -> None:
    vendors = paid_type(session, org, licences=2)
    add_users(session, org, vendors, CONFIRMED, CONFIRMED, CONFIRMED)  # overage
    vendors.holders_cached = 7
    session.commit()

    first = reconcile(session, DAY)
    before = _content(report_of(session, org))
    second = reconcile(session, DAY)

    assert first == ReconcileSummary(1, 1, 1, 1)
    assert second == ReconcileSummary(1, 1, 0, 0)  # the counter is right now; alert exists
    assert session.scalar(select(func.count()).select_from(LicenceReport)) == 1
    # The same report, rewritten in place: it still says which counter the day corrected.
    assert _content(report_of(session, org)) == before
    assert before["counters_corrected"] == 1
    assert detail_of(report_of(session, org), vendors)["cached"] == 7
    assert len(alerts_of(session, org)) == 1


def _content(report: LicenceReport) -> dict[str, Any]:
    return {
        name: getattr(report, name)
        for name in (
            "id",
            "org_id",
            "day",
            *reconciliation.REPORT_FIELDS,
        )
    }


def test_missed_days_are_caught_up(session: Session, org: Org) -> None:
    other = make_org(session, name="Acme", company_domain="acme.com")
    add_users(session, org, client_portal(session, org), CONFIRMED)
    session.commit()
    reconcile(session, DAY - timedelta(days=3))  # both orgs; then two days are missed

    summary = catch_up(session, DAY)

    assert summary.orgs == 2
    assert summary.reports_written == 2 * 3  # DAY-2, DAY-1, DAY
    days = session.scalars(
        select(LicenceReport.day).where(LicenceReport.org_id == other.id).order_by("day")
    ).all()
    assert days == [DAY - timedelta(days=n) for n in (3, 2, 1, 0)]
    # Up to date: only today is refreshed. An org without reports starts today.
    newcomer = make_org(session, name="Initech", company_domain="initech.com")
    session.commit()
    again = catch_up(session, DAY)
    assert (again.orgs, again.reports_written, again.alerts_raised) == (3, 3, 0)
    assert report_of(session, newcomer).day == DAY
    assert session.scalar(select(func.count()).select_from(LicenceReport)) == 9


def test_overage_after_a_purchase_was_reduced(session: Session, org: Org) -> None:
    vendors = paid_type(session, org, licences=10, effective_from=DAY - timedelta(days=10))
    add_users(session, org, vendors, *[CONFIRMED] * 8)
    buy(session, vendors, 5, DAY - timedelta(days=1))
    session.commit()

    reconcile(session, DAY - timedelta(days=5))
    reconcile(session, DAY)

    earlier = report_of(session, org, DAY - timedelta(days=5))
    assert (earlier.licences, earlier.overage) == (10, False)
    assert earlier.monthly_price_cents == 3_000
    report = report_of(session, org)
    assert (report.holders, report.licences, report.overage) == (8, 5, True)
    assert report.monthly_price_cents == 1_500
    assert detail_of(report, vendors)["overage"] is True
    [alert] = alerts_of(session, org)
    assert (alert.kind, alert.user_type_id, alert.day) == ("overage", vendors.id, DAY)
    assert "8 licence holders but 5 licences" in alert.detail


def test_near_limit_uses_the_orgs_percent(session: Session, org: Org) -> None:
    vendors = paid_type(session, org, licences=10)
    leads = paid_type(session, org, "Leads", licences=10)
    add_users(session, org, vendors, *[CONFIRMED] * 8)
    add_users(session, org, leads, *[CONFIRMED] * 7)
    session.commit()

    reconcile(session, DAY)
    assert not alerts_of(session, org)  # 80% and 70%, default 90%
    assert detail_of(report_of(session, org), vendors)["near_limit"] is False

    purchases.set_alert_settings(session, org.id, near_limit_percent=80)
    session.commit()
    reconcile(session, DAY + timedelta(days=1))
    report = report_of(session, org, DAY + timedelta(days=1))
    assert detail_of(report, vendors)["near_limit"] is True
    assert detail_of(report, leads)["near_limit"] is False
    assert not report.overage
    [alert] = alerts_of(session, org)
    assert (alert.kind, alert.user_type_id) == ("near_limit", vendors.id)


def test_price_covers_every_paid_type_with_the_orgs_slabs(session: Session, org: Org) -> None:
    paid_type(session, org, licences=500)
    paid_type(session, org, "Leads", licences=4_500)
    other = make_org(session, name="Acme", company_domain="acme.com")
    paid_type(session, other, licences=100)
    other.price_slabs = [{"up_to": 50, "cents": 500}, {"up_to": None, "cents": 100}]
    session.commit()

    reconcile(session, DAY)

    assert report_of(session, org).monthly_price_cents == 1_100_000  # 5,000 -> $11,000
    assert report_of(session, other).monthly_price_cents == 50 * 500 + 50 * 100


def test_a_trial_past_30_days_is_flagged(session: Session) -> None:
    trial = make_org(session, edition="trial")
    trial.trial_started_at = trial_start(30)
    session.commit()

    reconcile(session, DAY - timedelta(days=1))
    reconcile(session, DAY)

    assert report_of(session, trial, DAY - timedelta(days=1)).trial_expired is False
    report = report_of(session, trial)
    assert report.trial_expired is True
    assert report.deletion_scheduled_for is None
    [alert] = alerts_of(session, trial)
    assert (alert.kind, alert.day) == ("trial_expired", DAY)
    reconcile(session, DAY + timedelta(days=1))
    assert len(alerts_of(session, trial)) == 1  # raised once, not every day


def test_a_trial_without_a_start_counts_from_creation(session: Session) -> None:
    trial = make_org(session, edition="trial")
    session.commit()
    today = trial.created_at.date()
    reconcile(session, today + timedelta(days=29))
    reconcile(session, today + timedelta(days=30))
    assert not report_of(session, trial, today + timedelta(days=29)).trial_expired
    assert report_of(session, trial, today + timedelta(days=30)).trial_expired


def test_trial_limit_applies_to_the_client_portal(session: Session) -> None:
    trial = make_org(session, edition="trial")
    trial.trial_started_at = trial_start(2)
    add_users(session, trial, client_portal(session, trial), *[CONFIRMED] * 9)
    session.commit()
    reconcile(session, DAY)
    detail = detail_of(report_of(session, trial), client_portal(session, trial))
    assert (detail["holders"], detail["licences"], detail["near_limit"]) == (9, 10, True)


def test_free_edition_after_a_trial_schedules_deletion(session: Session) -> None:
    free = make_org(session, edition="free")
    free.trial_started_at = trial_start(40)
    paid = make_org(session, name="Acme", company_domain="acme.com", edition="professional")
    paid.trial_started_at = trial_start(40)
    paid.deletion_scheduled_for = DAY  # left from an earlier downgrade
    session.commit()

    reconcile(session, DAY)

    trial_end = DAY - timedelta(days=10)
    expected = trial_end + timedelta(days=30)
    assert report_of(session, free).deletion_scheduled_for == expected
    assert session.get(Org, free.id).deletion_scheduled_for == expected
    [alert] = alerts_of(session, free)
    assert (alert.kind, alert.day) == ("deletion_scheduled", trial_end)
    assert report_of(session, paid).deletion_scheduled_for is None
    assert session.get(Org, paid.id).deletion_scheduled_for is None
    assert not alerts_of(session, paid)
    assert not report_of(session, paid).trial_expired


def test_only_the_given_orgs_are_reconciled(session: Session, org: Org) -> None:
    other = make_org(session, name="Acme", company_domain="acme.com")
    session.commit()
    assert reconcile(session, DAY, org_ids=[other.id], batch_size=1).orgs == 1
    assert session.scalars(select(LicenceReport.org_id)).all() == [other.id]
    # Batches of one org commit one by one and still cover everybody.
    assert reconcile(session, DAY, batch_size=1).reports_written == 2


def test_alerts_are_emailed_once_to_the_admin(session: Session, org: Org, tmp_path: Path) -> None:
    silent = make_org(session, name="Acme", company_domain="acme.com")
    for each in (org, silent):
        vendors = paid_type(session, each, licences=1)
        add_users(session, each, vendors, CONFIRMED, CONFIRMED)
    purchases.set_alert_settings(session, org.id, admin_email="admin@zylker.com")
    session.commit()
    reconcile(session, DAY)
    settings = Settings(var_dir=tmp_path / "var", outbox_dir=tmp_path / "outbox")

    assert licence_alerts.email_pending_alerts(session, settings) == 1
    assert licence_alerts.email_pending_alerts(session, settings) == 0

    [sent] = list((tmp_path / "outbox").glob("*.eml"))
    message = email.message_from_bytes(sent.read_bytes())
    assert message["To"] == "admin@zylker.com"
    assert "More portal users than licences" in message["Subject"]
    body = message.get_payload(0).get_payload(decode=True).decode()
    assert "2 licence holders but 1 licences" in body
    [alert] = alerts_of(session, org)
    assert alert.emailed_at is not None
    [unsent] = alerts_of(session, silent)
    assert unsent.emailed_at is None  # no admin address: listed, not emailed


def test_list_alerts_filters(session: Session, org: Org) -> None:
    vendors = paid_type(session, org, licences=1)
    add_users(session, org, vendors, CONFIRMED, CONFIRMED)
    session.commit()
    reconcile(session, DAY - timedelta(days=1))
    reconcile(session, DAY)
    assert len(licence_alerts.list_alerts(session)) == 2
    assert [a.day for a in licence_alerts.list_alerts(session, org.id, since=DAY)] == [DAY]
    assert licence_alerts.list_alerts(session, org.id + 1000) == []


def test_the_actor_catches_up_and_emails(session: Session, org: Org, tmp_path: Path) -> None:
    vendors = paid_type(session, org, licences=1)
    add_users(session, org, vendors, CONFIRMED, CONFIRMED)
    purchases.set_alert_settings(session, org.id, admin_email="admin@zylker.com")
    session.commit()
    url = session.get_bind().url.render_as_string(hide_password=False)
    runtime.configure(Settings(database_url=url, outbox_dir=tmp_path / "outbox"))
    try:
        licence_actors.reconcile_licences()
        licence_actors.reconcile_licences()
    finally:
        runtime.current().close()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LicenceReport)) == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert licence_actors.reconcile_licences.queue_name == "maintenance"


def test_cli_reconcile_report_and_alerts(session: Session, org: Org) -> None:
    vendors = paid_type(session, org, licences=1)
    add_users(session, org, vendors, CONFIRMED, CONFIRMED)
    session.commit()
    app = typer.Typer()
    app.command("reconcile")(licence_reports.reconcile)
    app.command("report")(licence_reports.report)
    app.command("alerts")(licence_reports.alerts)
    url = session.get_bind().url.render_as_string(hide_password=False)
    env = {"PORTALFLOW_DATABASE_URL": url, "COLUMNS": "200"}

    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 reports written" in cli("reconcile", "--date", DAY.isoformat(), "--org", str(org.id))
    [report] = json.loads(cli("report", "--json"))
    assert report["day"] == DAY.isoformat()
    assert (report["overage"], report["monthly_price_usd"]) == (True, "3.00")
    lines = cli("report", "--csv", "--date", DAY.isoformat()).splitlines()
    assert lines[0].startswith("org_id,day,edition")
    assert "Vendors" in lines[1]
    assert "overage: Vendors 2/1" in cli("report")
    [alert] = json.loads(cli("alerts", "--org", str(org.id), "--json"))
    assert alert["kind"] == "overage"
    assert "Licence alerts" in cli("alerts")
