"""The failure report over HTTP: the same pipeline as the CLI, behind the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.web.app import create_app

from ..factories import make_inviter, make_org, make_record, start_and_expand

TOKEN = "s3cret-admin-token"


@pytest.fixture
def org_with_failures(session: Session) -> Any:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "boss", email="boss@zylker.com")
    session.commit()
    start_and_expand(session, org, inviter, ["boss", "ghost"])
    session.commit()
    return org


def client_for(session: Session, token: str) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    with TestClient(create_app(Settings(database_url=url, admin_token=token))) as client:
        yield client


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    yield from client_for(session, TOKEN)


def test_the_report_needs_the_admin_token(client: TestClient, org_with_failures: Any) -> None:
    path = f"/orgs/{org_with_failures.id}/failures"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    report = answer.json()
    assert report["total_failed"] == 2
    assert report["by_reason"] == {"company_domain": 1, "record_missing": 1}
    session_org = org_with_failures.id
    other = client.get("/orgs/999/failures", headers={"Authorization": f"Bearer {TOKEN}"})
    assert other.status_code == 404 and session_org != 999


def test_without_a_configured_token_the_admin_api_is_off(session: Session) -> None:
    for client in client_for(session, ""):
        assert client.get("/orgs/1/failures").status_code == 503
