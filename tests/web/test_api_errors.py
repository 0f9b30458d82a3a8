"""Ordinary bad input never makes the API answer 500; every error is problem+json (issue 17)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.web.app import create_app

from ..crm.test_intake import Tenant, tenant

ADMIN_TOKEN = "errors-admin-token"


@pytest.fixture
def zylker(session: Session) -> Tenant:
    return tenant(session, "Zylker", "zylker.com")


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, admin_token=ADMIN_TOKEN))
    app.state.enqueue_crm_event = lambda event_id: None
    app.state.enqueue_invite_chunks = lambda chunk_ids: None
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


def email_changed(email: str) -> dict[str, Any]:
    return {
        "id": "e-1",
        "type": "record.email_changed",
        "data": {"record_id": "C-1", "email": email},
    }


@pytest.mark.parametrize("text", ["bad\x00byte", "lone \ud800 surrogate"])
def test_unstorable_text_is_a_422_naming_the_field(
    client: TestClient, zylker: Tenant, text: str
) -> None:
    # json.dumps escapes both, as a hostile client would send them.
    body = json.dumps(email_changed(text))
    response = client.post(
        "/events", content=body, headers={**zylker.headers, "Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422, "invalid_request")
    assert ["body", "record.email_changed", "data", "email"] in [
        e["loc"] for e in problem["errors"]
    ]
    assert "email" in problem["detail"]


def test_unstorable_text_deep_in_free_fields_is_a_422(client: TestClient, zylker: Tenant) -> None:
    event = {
        "id": "e-2",
        "type": "record.upserted",
        "data": {"record_id": "C-1", "module": "Contacts", "fields": {"notes": [{"x": "\x00"}]}},
    }
    problem = assert_problem(
        client.post("/events", json=event, headers=zylker.headers), 422, "invalid_request"
    )
    assert any(e["loc"][-1] == "fields" for e in problem["errors"])


def test_ids_beyond_an_integer_column_are_a_422(client: TestClient, zylker: Tenant) -> None:
    body = {"user_type_id": 2**31, "inviter_id": zylker.inviter_id, "record_ids": ["C-1"]}
    response = client.post("/admin/invitations", json=body, headers=zylker.headers)
    assert_problem(response, 422, "invalid_request")
    assert_problem(
        client.get(f"/admin/bulk-runs/{2**40}", headers=zylker.headers), 422, "invalid_request"
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert_problem(client.get(f"/orgs/{2**31}/failures", headers=admin), 422, "invalid_request")


def test_a_body_over_a_megabyte_is_a_413(client: TestClient, zylker: Tenant) -> None:
    big = json.dumps(email_changed("x" * (1024 * 1024)))
    headers = {**zylker.headers, "Content-Type": "application/json"}
    assert_problem(client.post("/events", content=big, headers=headers), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield big.encode()

    assert_problem(
        client.post("/events", content=chunks(), headers=headers), 413, "payload_too_large"
    )


def test_every_error_is_problem_json(client: TestClient, zylker: Tenant) -> None:
    assert_problem(client.post("/events", json=email_changed("a@b.org")), 401, "unauthorized")
    assert_problem(client.get("/admin/bulk-runs/999", headers=zylker.headers), 404, "not_found")
    assert_problem(client.get("/no/such/page"), 404, "not_found")
    assert_problem(client.get("/ops"), 401, "unauthorized")
    assert_problem(
        client.post("/portal/accept", json={"token": "t", "password": "p"}), 400, "invalid_token"
    )


def test_an_unexpected_error_is_a_500_without_internals(client: TestClient, zylker: Tenant) -> None:
    def broken(event_id: int) -> None:
        raise RuntimeError("internal detail: the broker password is hunter2")

    client.app.state.enqueue_crm_event = broken  # type: ignore[attr-defined]
    response = client.post("/events", json=email_changed("a@b.org"), headers=zylker.headers)
    assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text


def test_the_schema_documents_errors_security_and_operation_ids(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"OrgApiKey", "AdminToken", "OpsBasic"} <= set(schema["components"]["securitySchemes"])
    operations = [op for methods in schema["paths"].values() for op in methods.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) and "receive_event" in ids and "invite" in ids
    paths = schema["paths"]
    assert paths["/events"]["post"]["security"] == [{"OrgApiKey": []}]
    assert paths["/orgs/{org_id}/failures"]["get"]["security"] == [{"AdminToken": []}]
    assert {"OpsBasic": []} in paths["/ops"]["get"]["security"]
    invite = paths["/admin/invitations"]["post"]["responses"]
    assert {"401", "403", "404", "409", "413", "422"} <= set(invite)
    assert "application/problem+json" in invite["422"]["content"]
    assert "429" in paths["/portal/accept"]["post"]["responses"]
    org_id = paths["/orgs/{org_id}/failures"]["get"]["parameters"][0]["schema"]
    assert org_id["maximum"] == 2**31 - 1
