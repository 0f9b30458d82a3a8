"""Access definitions are checked when saved; permission sets and field access apply."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import ACCESS_DESCRIPTIONS, AccessCode, FieldType, PermissionSet
from portalflow.pipelines.access import config, records
from portalflow.pipelines.access.catalogue import Catalogue, FieldSpec
from portalflow.pipelines.access.compiler import index_statements
from portalflow.pipelines.access.problems import AccessInvalid, AccessRefused
from portalflow.pipelines.access.rules import parse_rule
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import transfer_and_delete

from .access_setup import Portal


@pytest.mark.parametrize(
    ("rule", "code", "needle"),
    [
        ({"field": "Stage", "op": "equals", "value": "x"}, AccessCode.UNKNOWN_FIELD, "Quote_Stage"),
        (
            {"field": "Amount", "op": "contains", "value": "1"},
            AccessCode.OPERATOR_NOT_FOR_TYPE,
            "number",
        ),
        (
            {"field": "Quote_Stage", "op": "equals", "value": "Aproved"},
            AccessCode.INVALID_VALUE,
            "not an option",
        ),
        ({"lookup": "Subject"}, AccessCode.NOT_A_LOOKUP, "not a lookup"),
        (
            {
                "all": [
                    {"field": "Quote_Stage", "op": "equals", "value": "Approved"},
                    {"field": "Quote_Stage", "op": "equals", "value": "Negotiating"},
                ]
            },
            AccessCode.RULE_NEVER_MATCHES,
            "no record can match",
        ),
        (
            {
                "all": [
                    {"field": "Amount", "op": "greater_than", "value": 10},
                    {"field": "Amount", "op": "less_than", "value": 5},
                ]
            },
            AccessCode.RULE_NEVER_MATCHES,
            "Amount",
        ),
        (
            {
                "all": [
                    {"lookup": "Contact_Name"},
                    {"field": "Subject", "op": "is_empty"},
                    {"field": "Subject", "op": "contains", "value": "a"},
                ]
            },
            AccessCode.RULE_NEVER_MATCHES,
            "Subject",
        ),
        ({"any": []}, AccessCode.INVALID_RULE, "non-empty"),
        (
            {"field": "Subject", "op": "equals", "primary_field": "Nope"},
            AccessCode.UNKNOWN_FIELD,
            "Contacts",
        ),
        (
            {"field": "Amount", "op": "equals", "primary_field": "Mailing_State"},
            AccessCode.OPERATOR_NOT_FOR_TYPE,
            "cannot be compared",
        ),
    ],
)
def test_a_bad_rule_is_refused_with_its_code(
    session: Session, rule: dict[str, Any], code: AccessCode, needle: str
) -> None:
    portal = Portal(session)
    with pytest.raises(AccessInvalid) as caught:
        portal.expose("Quotes", rule=rule)
    assert [p.code for p in caught.value.problems] == [code]
    assert needle in str(caught.value)


def test_unknown_module_and_forbidden_permissions(session: Session) -> None:
    portal = Portal(session)
    with pytest.raises(AccessInvalid) as caught:
        portal.expose("Quote", rule={"lookup": "Contact_Name"})
    assert caught.value.problems[0].code is AccessCode.UNKNOWN_MODULE
    assert "did you mean 'Quotes'" in str(caught.value)
    with pytest.raises(AccessInvalid) as caught:
        portal.expose("Products", public=True, permissions={"edit": True})
    assert caught.value.problems[0].code is AccessCode.PERMISSION_NOT_ALLOWED
    with pytest.raises(AccessInvalid) as caught:
        portal.expose("Contacts", fields={"email": "visible"})
    assert caught.value.problems[0].code is AccessCode.PII_HIDDEN
    with pytest.raises(AccessInvalid) as caught:
        portal.expose("Quotes")
    assert "needs a rule" in str(caught.value)


def test_a_catalogue_change_that_breaks_a_rule_is_refused(session: Session) -> None:
    portal = Portal(session)
    portal.expose("Quotes", rule={"lookup": "Contact_Name"})
    with pytest.raises(AccessInvalid) as caught:
        config.define_fields(
            session, portal.org.id, "Quotes", [{"name": "Subject", "type": "text"}]
        )
    assert caught.value.problems[0].code is AccessCode.FIELD_IN_USE


def test_permission_sets_override_the_type_and_pii_is_shown_on_purpose(
    session: Session,
) -> None:
    portal = Portal(session)
    contact = portal.record(
        "C-1", "Contacts", email="pat@customer.example.org", Mailing_State="Ohio"
    )
    portal.record(
        "Q-1",
        "Quotes",
        Contact_Name="C-1",
        Quote_Stage="Draft",
        Subject="S",
        Internal_Note="margin 40%",
    )
    portal.expose(
        "Quotes",
        rule={"lookup": "Contact_Name"},
        fields={"Internal_Note": "hidden", "Amount": "read_only"},
    )
    user = portal.user(contact)
    page = records.list_records(session, user.id, "Quotes")
    assert "Internal_Note" not in page.records[0].values
    assert page.records[0].can_edit is False
    own = records.list_records(session, user.id, "Contacts").records[0]
    assert "email" not in own.values  # PII: hidden by default

    with pytest.raises(AccessInvalid) as caught:
        config.define_permission_set(
            session,
            portal.org.id,
            portal.customers.id,
            "Editors",
            modules={"Contacts": {"fields": {"email": "read_only"}}},
        )
    assert caught.value.problems[0].code is AccessCode.PII_HIDDEN
    config.define_permission_set(
        session,
        portal.org.id,
        portal.customers.id,
        "Editors",
        show_pii=True,
        modules={
            "Quotes": {"edit": True, "create": True},
            "Contacts": {"fields": {"email": "read_only"}},
        },
    )
    config.assign_permission_set(session, portal.org.id, [user.id], "Editors")
    own = records.list_records(session, user.id, "Contacts").records[0]
    assert own.values["email"] == "pat@customer.example.org"

    edited = records.update_record(session, user.id, "Quotes", "Q-1", {"Subject": "New"})
    assert edited.values["Subject"] == "New"
    for values, code in (
        ({"Amount": 5}, AccessCode.FIELD_NOT_EDITABLE),
        ({"Contact_Name": "C-2"}, AccessCode.FIELD_NOT_EDITABLE),
        ({"Internal_Note": "x"}, AccessCode.FIELD_NOT_EDITABLE),
        ({"Quote_Stage": "Won"}, AccessCode.INVALID_VALUE),
    ):
        with pytest.raises(AccessRefused) as refused:
            records.update_record(session, user.id, "Quotes", "Q-1", values)
        assert refused.value.refusal.code is code
    crm_id, created = records.create_record(
        session, user.id, "Quotes", {"Subject": "Mine", "Quote_Stage": "draft"}
    )
    assert created is not None and created.own and created.values["Quote_Stage"] == "Draft"
    with pytest.raises(AccessRefused) as refused:
        records.delete_record(session, user.id, "Quotes", crm_id)
    assert refused.value.refusal.code is AccessCode.ACTION_NOT_PERMITTED

    config.assign_permission_set(session, portal.org.id, [user.id], None)
    with pytest.raises(AccessRefused):
        records.update_record(session, user.id, "Quotes", "Q-1", {"Subject": "Again"})


def test_numbers_dates_and_text_operators_run_on_both_databases(session: Session) -> None:
    portal = Portal(session)
    config.define_fields(
        session,
        portal.org.id,
        "Invoices",
        [
            {"name": "Contact_Name", "type": "lookup", "lookup_module": "Contacts"},
            {"name": "Total", "type": "number"},
            {"name": "Due", "type": "date"},
            {"name": "Paid", "type": "boolean"},
            {"name": "Title", "type": "text"},
        ],
    )
    contact = portal.record("C-1", "Contacts")
    portal.record("I-1", "Invoices", Contact_Name="C-1", Total="120.5", Due="2026-03-01",
                  Paid=True, Title="Server rack")  # fmt: skip
    portal.record("I-2", "Invoices", Contact_Name="C-1", Total=80, Due="2026-01-15",
                  Paid=False, Title="Cables")  # fmt: skip
    portal.record("I-3", "Invoices", Contact_Name="C-1", Total="n/a", Title="Rack 50%")
    portal.expose("Invoices", rule={"lookup": "Contact_Name"})
    user = portal.user(contact)
    for condition, expected in (
        ({"field": "Total", "op": "greater_than", "value": 100}, ["I-1"]),
        ({"field": "Total", "op": "less_or_equal", "value": "80"}, ["I-2"]),
        ({"field": "Due", "op": "less_than", "value": "2026-02-01"}, ["I-2"]),
        ({"field": "Paid", "op": "equals", "value": True}, ["I-1"]),
        ({"field": "Title", "op": "contains", "value": "RACK"}, ["I-1", "I-3"]),
        ({"field": "Title", "op": "contains", "value": "50%"}, ["I-3"]),
        ({"field": "Title", "op": "starts_with", "value": "server"}, ["I-1"]),
        ({"field": "Title", "op": "not_contains", "value": "rack"}, ["I-2"]),
        ({"field": "Due", "op": "is_empty"}, ["I-3"]),
    ):
        portal.expose("Invoices", rule={"all": [{"lookup": "Contact_Name"}, condition]})
        page = records.list_records(session, user.id, "Invoices")
        assert [r.id for r in page.records] == expected, condition


def test_the_indexes_a_rule_needs() -> None:
    fields = [
        FieldSpec("Quotes", "Contact_Name", FieldType.LOOKUP, lookup_module="Contacts"),
        FieldSpec("Quotes", "Stage", FieldType.PICKLIST, options=("Draft", "Approved")),
        FieldSpec("Quotes", "Region", FieldType.TEXT),
        FieldSpec("Quotes", "Amount", FieldType.NUMBER),
        FieldSpec("Quotes", "Clients", FieldType.MULTI_LOOKUP, lookup_module="Contacts"),
        FieldSpec("Contacts", "State", FieldType.TEXT),
    ]
    known = Catalogue(fields)

    def needed(rule: dict[str, Any]) -> list[str]:
        node = parse_rule(rule, module="Quotes", primary_module="Contacts", catalogue=known)
        return [s.split(" ON ")[0].split()[-1] for s in index_statements("Quotes", node)]

    lookup = {"lookup": "Contact_Name"}
    stage = {"field": "Stage", "op": "equals", "value": "Approved"}
    region = {"field": "Region", "op": "equals", "primary_field": "State"}
    amount = {"field": "Amount", "op": "greater_than", "value": 5}
    assert needed({"all": [stage, lookup]}) == ["ix_crm_records_quotes_contact_name"]
    assert needed({"any": [lookup, region]}) == [
        "ix_crm_records_quotes_contact_name",
        "ix_crm_records_quotes_region",
    ]
    assert needed({"any": [lookup, amount]}) == []  # one branch no index serves
    assert needed({"all": [amount, stage]}) == ["ix_crm_records_quotes_stage"]
    node = parse_rule({"lookup": "Clients"}, module="Quotes", primary_module="Contacts",
                      catalogue=known)  # fmt: skip
    assert "USING gin ((fields -> 'Clients') jsonb_path_ops)" in index_statements("Quotes", node)[0]


def test_deleting_a_user_type_takes_its_exposures_and_sets_with_it(session: Session) -> None:
    portal = Portal(session)
    partners = orgs.add_user_type(session, portal.org.id, name="Partners", module="Contacts")
    for user_type in (portal.customers, partners):
        config.expose_module(
            session, portal.org.id, user_type.id, "Quotes", rule={"lookup": "Contact_Name"}
        )
    config.define_permission_set(
        session, portal.org.id, partners.id, "Partner editors", modules={"Quotes": {"edit": True}}
    )
    moved = portal.user(portal.record("C-1", "Contacts"), partners)
    portal.record("Q-1", "Quotes", Contact_Name="C-1")
    config.assign_permission_set(session, portal.org.id, [moved.id], "Partner editors")
    transfer_and_delete.start_transfer_and_delete(
        session, portal.org.id, partners.id, portal.customers.id
    )
    session.commit()
    assert transfer_and_delete.continue_transfer_and_delete(session, partners.id, max_batches=None)
    assert session.scalar(select(func.count()).select_from(PermissionSet)) == 0
    page = records.list_records(session, moved.id, "Quotes")
    assert [(r.id, r.can_edit) for r in page.records] == [("Q-1", False)]


def test_every_access_code_has_its_description() -> None:
    assert set(ACCESS_DESCRIPTIONS) == set(AccessCode)
