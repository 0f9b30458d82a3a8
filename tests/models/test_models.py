"""The migration builds exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portalflow.models import Base, Edition, PortalUserType
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.tenancy import orgs

from ..factories import client_portal, make_org


def test_migration_matches_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_create_org_makes_portal_and_client_portal(session: Session) -> None:
    org = make_org(session, name="Zylker Retail")
    session.commit()
    assert org.portal is not None and org.portal.slug == "zylker-retail"
    cp = client_portal(session, org)
    assert (cp.module, cp.invitation_field, cp.is_client_portal) == ("Contacts", "email", True)


def test_duplicate_portal_names_get_distinct_slugs(session: Session) -> None:
    first = make_org(session, name="Acme")
    second = make_org(session, name="Acme", company_domain="acme2.com")
    assert first.portal and second.portal
    assert (first.portal.slug, second.portal.slug) == ("acme", "acme-2")


def test_user_type_rules(session: Session) -> None:
    org = make_org(session)
    for name in ("Vendors", "Partners", "Leads", "Resellers"):
        orgs.add_user_type(session, org.id, name=name, module="Vendors")
    try:
        orgs.add_user_type(session, org.id, name="Sixth", module="Contacts")
    except InvalidInput as exc:
        assert "at most 5" in str(exc)
    else:
        raise AssertionError("a sixth user type was accepted")


def test_trial_and_phone_rules(session: Session) -> None:
    trial = make_org(session, edition=Edition.TRIAL, company_domain="trial.com")
    us_org = make_org(session, name="Other", company_domain="other.com")
    for org_id, kwargs, needle in (
        (trial.id, {}, "trial"),
        (us_org.id, {"invitation_preference": "phone"}, "India"),
    ):
        try:
            orgs.add_user_type(session, org_id, name="Vendors", module="Vendors", **kwargs)
        except InvalidInput as exc:
            assert needle in str(exc)
        else:
            raise AssertionError(f"expected a refusal naming {needle}")
    assert session.query(PortalUserType).count() == 2


def test_bad_org_input_is_named(session: Session) -> None:
    for kwargs, needle in (
        ({"company_domain": "not a domain"}, "valid domain"),
        ({"country": "India"}, "two-letter"),
        ({"edition": "gold"}, "edition 'gold'"),
        ({"from_email": "nobody"}, "From address"),
    ):
        try:
            make_org(session, **kwargs)
        except InvalidInput as exc:
            assert needle in str(exc)
        else:
            raise AssertionError(f"{kwargs} was accepted")
    try:
        orgs.get_user_type(session, 999, 1)
    except NotFound as exc:
        assert "999" in str(exc)


def test_a_crm_user_email_is_unique_per_org(session: Session) -> None:
    org = make_org(session)
    orgs.add_crm_user(session, org.id, name="Ann", email="ann@zylker.com", modules=["Contacts"])
    try:
        orgs.add_crm_user(session, org.id, name="Ann 2", email="ANN@zylker.com", modules=[])
    except InvalidInput as exc:
        assert "already exists in org" in str(exc)
    else:
        raise AssertionError("a second CRM user with the same email was accepted")
