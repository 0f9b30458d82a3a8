"""The seeds' own examples, on SQLite and PostgreSQL: what each portal user sees."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portalflow.models import PortalUserStatus
from portalflow.pipelines.access import config, explain, records
from portalflow.pipelines.access.problems import AccessRefused
from portalflow.pipelines.tenancy import orgs

from .access_setup import Portal


def visible(session: Session, user_id: int, module: str) -> list[str]:
    page = records.list_records(session, user_id, module)
    return [record.id for record in page.records]


def test_patricia_sees_her_quotes_only_once_approved(session: Session) -> None:
    portal = Portal(session)
    patricia = portal.record("C-1", "Contacts", first_name="Patricia", Mailing_Country="Canada")
    other = portal.record("C-2", "Contacts", first_name="Omar")
    portal.record("Q-1", "Quotes", Contact_Name="C-1", Quote_Stage="Approved", Subject="A")
    portal.record("Q-2", "Quotes", Contact_Name="C-1", Quote_Stage="Negotiating", Subject="B")
    portal.record("Q-3", "Quotes", Contact_Name="C-2", Quote_Stage="Approved", Subject="C")
    portal.expose(
        "Quotes",
        rule={
            "all": [
                {"lookup": "Contact_Name"},
                {"field": "Quote_Stage", "op": "equals", "value": "Approved"},
                {"field": "Quote_Stage", "op": "not_equals", "value": "Negotiating"},
            ]
        },
    )
    user = portal.user(patricia)
    portal.user(other)
    assert visible(session, user.id, "Quotes") == ["Q-1"]

    why = explain.explain(session, user.id, "Quotes", "Q-2")
    assert not why.visible
    assert why.decided_by == "rule.all[1]"
    assert "'Negotiating'" in why.summary
    assert explain.explain(session, user.id, "Quotes", "Q-1").visible
    assert not explain.explain(session, user.id, "Quotes", "Q-3").visible

    # Once the quote reaches approval, it shows.
    session.execute(
        records.update(records.CrmRecord)
        .where(records.CrmRecord.crm_id == "Q-2")
        .values(fields={"Contact_Name": "C-1", "Quote_Stage": "Approved"})
    )
    assert visible(session, user.id, "Quotes") == ["Q-1", "Q-2"]


def test_products_by_the_contacts_mailing_country(session: Session) -> None:
    portal = Portal(session)
    canadian = portal.record("C-1", "Contacts", Mailing_Country="Canada")
    nowhere = portal.record("C-2", "Contacts")
    portal.record("P-1", "Products", Product_Name="Maple", Available_Area="canada")
    portal.record("P-2", "Products", Product_Name="Tea", Available_Area="India")
    portal.expose(
        "Products",
        public=True,
        rule={"field": "Available_Area", "op": "equals", "primary_field": "Mailing_Country"},
    )
    assert visible(session, portal.user(canadian).id, "Products") == ["P-1"]
    # A user with no mailing country matches nothing by field.
    assert visible(session, portal.user(nowhere).id, "Products") == []


def test_agents_linked_by_lookup_or_in_the_contacts_region(session: Session) -> None:
    portal = Portal(session)
    contact = portal.record("C-1", "Contacts", Mailing_State="Texas")
    portal.record("A-1", "Agents", Agent_Name="Hired", Hired_By="C-1", State="Alaska")
    portal.record("A-2", "Agents", Agent_Name="Ohio", State="Ohio")
    portal.record("A-3", "Agents", Agent_Name="Texan", Service_Region="texas")
    portal.record("A-4", "Agents", Agent_Name="Far", State="Maine", Hired_By="C-9")
    portal.expose(
        "Agents",
        rule={
            "any": [
                {"lookup": "Hired_By"},
                {
                    "field": "State",
                    "op": "in",
                    "value": ["Michigan", "Ohio", "Chicago", "Washington", "Indianapolis"],
                },
                {"field": "Service_Region", "op": "equals", "primary_field": "Mailing_State"},
            ]
        },
        permissions={"edit": True},
    )
    user = portal.user(contact)
    page = records.list_records(session, user.id, "Agents")
    assert [(r.id, r.own, r.can_edit) for r in page.records] == [
        ("A-1", True, True),
        ("A-2", False, False),
        ("A-3", False, False),
    ]
    why = explain.explain(session, user.id, "Agents", "A-3")
    assert why.visible and why.decided_by == "rule.any[2]"
    assert why.steps[2].user_value == "Texas"
    assert explain.explain(session, user.id, "Agents", "A-1").decided_by == "rule.any[0]"
    assert not explain.explain(session, user.id, "Agents", "A-4").visible


def test_a_hospitals_doctors_whose_specialization_contains_the_complaint(
    session: Session,
) -> None:
    portal = Portal(session)
    patient_type = orgs.add_user_type(session, portal.org.id, name="Patients", module="Patients")
    config.define_fields(
        session, portal.org.id, "Patients", [{"name": "Complaint", "type": "text"}]
    )
    config.define_fields(
        session,
        portal.org.id,
        "Doctors",
        [{"name": "Doctor_Name", "type": "text"}, {"name": "Specialization", "type": "text"}],
    )
    config.expose_module(
        session,
        portal.org.id,
        patient_type.id,
        "Doctors",
        rule={"field": "Specialization", "op": "contains", "primary_field": "Complaint"},
    )
    patient = portal.record("PT-1", "Patients", Complaint="IBS")
    portal.record("D-1", "Doctors", Doctor_Name="Lee", Specialization="IBS specialist")
    portal.record("D-2", "Doctors", Doctor_Name="Roy", Specialization="Cardiology")
    user = portal.user(patient, patient_type)
    assert visible(session, user.id, "Doctors") == ["D-1"]
    assert visible(session, user.id, "Patients") == ["PT-1"]


def test_a_public_module_is_visible_to_all_and_view_only(session: Session) -> None:
    portal = Portal(session)
    first = portal.user(portal.record("C-1", "Contacts"))
    second = portal.user(portal.record("C-2", "Contacts"))
    portal.record("CP-1", "Channel_Partners", Partner_Name="North")
    portal.record("CP-2", "Channel_Partners", Partner_Name="South")
    portal.expose("Channel_Partners", public=True)
    for user in (first, second):
        page = records.list_records(session, user.id, "Channel_Partners")
        assert [(r.id, r.can_edit) for r in page.records] == [("CP-1", False), ("CP-2", False)]
    try:
        records.update_record(session, first.id, "Channel_Partners", "CP-1", {"Partner_Name": "X"})
    except AccessRefused as exc:
        assert exc.refusal.code == "action_not_permitted"
        assert "public module" in exc.refusal.detail
    else:
        raise AssertionError("a public record was edited")
    # Primary module: the user's own record only; a deactivated user sees nothing.
    assert visible(session, first.id, "Contacts") == ["C-1"]
    first.status = PortalUserStatus.DEACTIVATED
    session.flush()
    try:
        visible(session, first.id, "Channel_Partners")
    except AccessRefused as exc:
        assert exc.refusal.code == "user_not_active"
    else:
        raise AssertionError("a deactivated user saw records")


def test_enterprise_products_by_lookup_or_customer_type(session: Session) -> None:
    portal = Portal(session)
    config.define_fields(
        session,
        portal.org.id,
        "Products",
        [
            {"name": "Product_Name", "type": "text"},
            {"name": "Bought_By", "type": "lookup", "lookup_module": "Contacts"},
            {"name": "Customer_Type", "type": "picklist", "options": ["Enterprise", "SMB"]},
        ],
    )
    contact = portal.record("C-1", "Contacts")
    portal.record("P-1", "Products", Product_Name="Own router", Bought_By="C-1")
    portal.record("P-2", "Products", Product_Name="Rack", Customer_Type="Enterprise")
    portal.record("P-3", "Products", Product_Name="Mouse", Customer_Type="SMB")
    portal.expose(
        "Products",
        rule={
            "any": [
                {"lookup": "Bought_By"},
                {"field": "Customer_Type", "op": "equals", "value": "Enterprise"},
            ]
        },
    )
    assert visible(session, portal.user(contact).id, "Products") == ["P-1", "P-2"]


def test_records_linked_by_a_multi_select_lookup(session: Session) -> None:
    portal = Portal(session)
    config.define_fields(
        session,
        portal.org.id,
        "Projects",
        [
            {"name": "Title", "type": "text"},
            {"name": "Clients", "type": "multi_lookup", "lookup_module": "Contacts"},
        ],
    )
    contact = portal.record("C-1", "Contacts")
    portal.record("PR-1", "Projects", Title="Shared", Clients=["C-7", "C-1"])
    portal.record("PR-2", "Projects", Title="Other", Clients=["C-7"])
    portal.record("PR-3", "Projects", Title="Not a list", Clients="C-1")
    portal.record("PR-4", "Projects", Title="None")
    portal.expose("Projects", rule={"lookup": "Clients"}, permissions={"create": True})
    user = portal.user(contact)
    page = records.list_records(session, user.id, "Projects")
    assert [(r.id, r.own, r.values["Clients"]) for r in page.records] == [
        ("PR-1", True, ["C-7", "C-1"])
    ]
    assert explain.explain(session, user.id, "Projects", "PR-1").decided_by == "rule"
    crm_id, created = records.create_record(session, user.id, "Projects", {"Title": "New"})
    assert created is not None and created.values["Clients"] == ["C-1"]
    assert visible(session, user.id, "Projects") == ["PR-1", crm_id]
