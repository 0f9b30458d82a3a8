"""Managing CRM webhooks: the admin API (the org's API key) and `portalflow webhooks`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from portalflow.pipelines.crm_webhooks import keys, outbox
from portalflow.pipelines.tenancy import api_keys
from portalflow.web.app import create_app

from ..cli_runner import flat, run
from ..factories import make_org

LOOPBACK = "127.0.0.0/8"


@pytest.fixture
def settings(session: Session, tmp_path: Path) -> Settings:
    url = session.get_bind().url.render_as_string(hide_password=False)
    return Settings(
        var_dir=tmp_path / "var",
        database_url=url,
        admin_token="t",
        webhook_allowed_networks=(LOOPBACK,),
    )


@pytest.fixture
def queued() -> list[int]:
    return []


@pytest.fixture
def client(settings: Settings, queued: list[int]) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.enqueue_webhook_deliveries = queued.extend
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def org_with_key(session: Session, name: str = "Zylker") -> tuple[int, dict[str, str]]:
    org = make_org(session, name=name, company_domain=f"{name.lower()}.com")
    _key, plaintext = api_keys.create_key(session, org.id, "crm")
    session.commit()
    return org.id, {"Authorization": f"Bearer {plaintext}"}


def test_the_endpoint_lifecycle_over_http(
    session: Session, client: TestClient, settings: Settings
) -> None:
    _org_id, auth = org_with_key(session)
    body = {"url": "http://127.0.0.1:9/hooks", "event_types": ["invitation.failed"]}
    created = client.post("/admin/webhooks", json=body, headers=auth)
    assert created.status_code == 201, created.text
    answer = created.json()
    secret, endpoint_id = answer["secret"], answer["id"]
    assert secret.startswith("whsec_") and answer["event_types"] == ["invitation.failed"]
    stored = session.get_one(WebhookEndpoint, endpoint_id)
    assert keys.decrypt(settings, stored.secret_encrypted) == secret
    session.rollback()  # end the read: SQLite's BEGIN IMMEDIATE would block the app

    listed = client.get("/admin/webhooks", headers=auth).json()
    assert [e["id"] for e in listed] == [endpoint_id] and secret not in json.dumps(listed)

    changed = client.patch(
        f"/admin/webhooks/{endpoint_id}", json={"event_types": [], "enabled": False}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["event_types"], changed.json()["enabled"]) == (["*"], False)

    rotated = client.post(f"/admin/webhooks/{endpoint_id}/rotate-secret", json={}, headers=auth)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != secret
    assert rotated.json()["previous_secret_valid_until"] is not None

    assert client.delete(f"/admin/webhooks/{endpoint_id}", headers=auth).status_code == 204
    assert client.get("/admin/webhooks", headers=auth).json() == []


def test_refusals_are_problems_naming_what_is_wrong(session: Session, client: TestClient) -> None:
    _org_id, auth = org_with_key(session)
    refused = client.post("/admin/webhooks", json={"url": "http://10.0.0.8/x"}, headers=auth)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "invalid_input"
    assert "url_private_address" in problem["detail"] and "10.0.0.8" in problem["detail"]
    scheme = client.post("/admin/webhooks", json={"url": "gopher://x/"}, headers=auth)
    assert scheme.status_code == 422 and "url_not_http" in scheme.json()["detail"]
    unknown = client.post(
        "/admin/webhooks",
        json={"url": "http://127.0.0.1:9/", "event_types": ["invitation.opened"]},
        headers=auth,
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_request"
    assert client.get("/admin/webhooks").status_code == 401


def test_another_orgs_endpoints_and_deliveries_are_404(
    session: Session, client: TestClient
) -> None:
    _org, auth = org_with_key(session)
    _other, other_auth = org_with_key(session, "Acme")
    body = {"url": "http://127.0.0.1:9/hooks"}
    endpoint_id = client.post("/admin/webhooks", json=body, headers=auth).json()["id"]
    listing = f"/admin/webhook-deliveries?endpoint_id={endpoint_id}"
    for call in (
        lambda: client.delete(f"/admin/webhooks/{endpoint_id}", headers=other_auth),
        lambda: client.patch(f"/admin/webhooks/{endpoint_id}", json={}, headers=other_auth),
        lambda: client.get(listing, headers=other_auth),
    ):
        answer = call()
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_dead_deliveries_are_listed_and_redelivered(
    session: Session, client: TestClient, queued: list[int]
) -> None:
    org_id, auth = org_with_key(session)
    endpoint_id = client.post(
        "/admin/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=auth
    ).json()["id"]
    outbox.emit(session, [outbox.Event(outbox.T.LICENCE_ALERT, org_id, {"kind": "overage"})])
    session.commit()
    row = session.scalars(select(WebhookDelivery)).one()
    row.status, row.attempts, row.last_failure_code = WebhookDeliveryStatus.DEAD, 15, "timeout"
    row_id = row.id
    session.commit()
    dead = client.get("/admin/webhook-deliveries?status=dead", headers=auth).json()
    assert [(d["id"], d["endpoint_id"], d["last_failure_code"]) for d in dead] == [
        (row_id, endpoint_id, "timeout")
    ]
    body = {"delivery_ids": [row_id]}
    again = client.post("/admin/webhook-deliveries/redeliver", json=body, headers=auth)
    assert again.status_code == 200 and again.json() == {"queued": [row_id]}
    assert queued == [row_id]
    row = session.get_one(WebhookDelivery, row_id, populate_existing=True)
    assert (row.status, row.attempts) == (WebhookDeliveryStatus.PENDING, 0)
    session.rollback()
    refused = client.post("/admin/webhook-deliveries/redeliver", json=body, headers=auth)
    assert refused.status_code == 422 and "only dead deliveries" in refused.json()["detail"]


def test_ops_shows_the_dead_deliveries(
    session: Session, client: TestClient, settings: Settings
) -> None:
    org_id, auth = org_with_key(session)
    client.post("/admin/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=auth)
    outbox.emit(session, [outbox.Event(outbox.T.LICENCE_ALERT, org_id, {"kind": "overage"})])
    session.commit()
    row = session.scalars(select(WebhookDelivery)).one()
    row.status = WebhookDeliveryStatus.DEAD
    session.commit()
    page = client.get("/ops", auth=("ops", "t"))
    assert page.status_code == 200
    assert f'<tr data-org="{org_id}"><td>{org_id}</td><td class="n bad">1</td></tr>' in page.text


# -- the CLI ---------------------------------------------------------------------------------


def cli_org(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS", LOOPBACK)
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    assert code == 0, out


def test_cli_create_shows_the_secret_once_then_lists_without_it(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_org(cli_env, monkeypatch)
    code, out = run(
        "webhooks", "create", "--org", "1", "--url", "http://127.0.0.1:9/hooks",
        "-e", "invitation.failed", "-e", "user.removed", "--json",
    )  # fmt: skip
    assert code == 0, out
    created: dict[str, Any] = json.loads(out)
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["invitation.failed", "user.removed"]
    code, out = run("webhooks", "list", "--org", "1", "--json")
    assert code == 0 and created["secret"] not in out
    assert [e["url"] for e in json.loads(out)] == ["http://127.0.0.1:9/hooks"]
    code, out = run("webhooks", "rotate-secret", "1", "--org", "1", "--overlap-hours", "2")
    assert code == 0 and "whsec_" in out and created["secret"] not in out
    code, out = run("webhooks", "update", "1", "--org", "1", "--disable", "--all-events", "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    assert json.loads(out)["event_types"] == ["*"]
    code, out = run("webhooks", "deliveries", "--org", "1", "--status", "dead", "--json")
    assert code == 0 and json.loads(out) == []
    code, out = run("webhooks", "delete", "1", "--org", "1")
    assert code == 0 and "deleted" in out


def test_cli_errors_name_what_is_wrong(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli_org(cli_env, monkeypatch)
    code, out = run("webhooks", "create", "--org", "1", "--url", "http://169.254.169.254/")
    assert code == 2 and "url_private_address" in flat(out)
    code, out = run("webhooks", "create", "--org", "1", "--url", "http://127.0.0.1/", "-e", "x.y")
    assert code == 2 and "unknown event type(s) x.y" in flat(out)
    code, out = run("webhooks", "delete", "7", "--org", "1")
    assert code == 2 and "webhook endpoint 7 does not exist in org 1" in flat(out)
    code, out = run("webhooks", "events", "--json")
    assert code == 0 and "lead_conversion.choice_required" in json.loads(out)


def test_cli_without_the_key_under_a_real_broker_names_the_variable(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_org(cli_env, monkeypatch)
    monkeypatch.setenv("PORTALFLOW_BROKER_URL", "redis://127.0.0.1:6379/15")
    code, out = run("webhooks", "create", "--org", "1", "--url", "http://127.0.0.1:9/")
    assert code == 2 and "PORTALFLOW_WEBHOOK_KEY is not set" in flat(out)
