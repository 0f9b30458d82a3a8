"""The admin API of portal access and the portal user's record routes, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import SignInMethod
from portalflow.pipelines.signin import sessions
from portalflow.pipelines.tenancy import api_keys
from portalflow.web.app import create_app

from .access_setup import Portal


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_admin_api_and_portal_routes(session: Session, client: TestClient) -> None:
    portal = Portal(session)
    contact = portal.record("C-1", "Contacts", first_name="Patricia")
    for number in range(1, 8):
        stage = "Approved" if number % 2 else "Draft"
        portal.record(f"Q-{number}", "Quotes", Contact_Name="C-1", Quote_Stage=stage, Amount=number)
    portal.record("Q-99", "Quotes", Contact_Name="C-2", Quote_Stage="Approved")
    user = portal.user(contact)
    _, key = api_keys.create_key(session, portal.org.id, "crm")
    session.commit()
    admin = {"Authorization": f"Bearer {key}"}
    path = f"/admin/access/user-types/{portal.customers.id}/modules/Quotes"

    never = {"all": [{"field": "Amount", "op": "greater_than", "value": 9},
                     {"field": "Amount", "op": "less_or_equal", "value": 9}]}  # fmt: skip
    refused = client.put(path, json={"rule": never}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["problems"][0]["code"] == "rule_never_matches"
    assert client.put(path, json={"rule": never}).status_code == 401

    rule = {"all": [{"lookup": "Contact_Name"}, {"field": "Quote_Stage", "op": "equals",
                                                   "value": "Approved"}]}  # fmt: skip
    saved = client.put(
        path, json={"rule": rule, "permissions": {"edit": True}, "fields": {"Amount": "read_only"}},
        headers=admin,
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert any("Contact_Name" in index for index in saved.json()["indexes"])

    signed_in = sessions.open_session(session, user, SignInMethod.PASSWORD)
    session.commit()
    me = {"Authorization": f"Bearer {signed_in.token}"}
    first = client.get("/portal/me/records", params={"module": "Quotes", "limit": 3}, headers=me)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["id"] for r in body["records"]] == ["Q-1", "Q-3", "Q-5"]
    assert {f["name"]: f["access"] for f in body["fields"]}["Amount"] == "read_only"
    second = client.get(
        "/portal/me/records",
        params={"module": "Quotes", "limit": 3, "after": body["next_after"]},
        headers=me,
    )
    assert [r["id"] for r in second.json()["records"]] == ["Q-7"]
    assert second.json()["next_after"] is None

    assert client.get("/portal/me/records/Quotes/Q-3", headers=me).json()["values"]["Amount"] == 3
    hidden = client.get("/portal/me/records/Quotes/Q-2", headers=me)
    assert hidden.status_code == 404 and hidden.json()["reason"] == "record_not_visible"
    assert client.get("/portal/me/records/Quotes/Q-99", headers=me).status_code == 404
    assert client.get("/portal/me/records/Quotes/Q-1").status_code == 401

    edited = client.patch("/portal/me/records/Quotes/Q-1", json={"values": {"Subject": "Hi"}},
                          headers=me)  # fmt: skip
    assert edited.status_code == 200 and edited.json()["values"]["Subject"] == "Hi"
    read_only = client.patch("/portal/me/records/Quotes/Q-1", json={"values": {"Amount": 2}},
                             headers=me)  # fmt: skip
    assert read_only.status_code == 403 and read_only.json()["reason"] == "field_not_editable"
    assert client.delete("/portal/me/records/Quotes/Q-1", headers=me).status_code == 403
    deals = client.get("/portal/me/records", params={"module": "Deals"}, headers=me)
    assert deals.status_code == 403 and deals.json()["reason"] == "module_not_exposed"

    why = client.get(
        "/admin/access/explain",
        params={"user": user.id, "module": "Quotes", "record": "Q-2"},
        headers=admin,
    )
    assert why.status_code == 200 and why.json()["decided_by"] == "rule.all[1]"
