"""Portal sign-in over HTTP: the JSON API and the pages, on the real app and databases.

The app's ``enqueue_dispatch`` is the real dispatch pipeline, sending into a real SMTP
server (aiosmtpd) and the SMS file outbox, as a worker would.
"""

from __future__ import annotations

import email
import json
import re
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.pipelines.delivery import dispatch
from portalflow.pipelines.delivery.channels import build_email_channel, build_sms_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.users import lifecycle
from portalflow.pipelines.users.lifecycle import Action
from portalflow.web.app import create_app
from portalflow.web.portal_auth import SESSION_COOKIE

from ..invitations.test_acceptance import PASSWORD
from ..smtp_server import SmtpServer
from .test_signin import confirmed_agent, confirmed_email_user

NEW_PASSWORD = "velvet-harbour-quince-9"
RESET_TOKEN = re.compile(r"/zylker/reset-password\?token=([A-Za-z0-9_\-]+)")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(session: Session, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, var_dir=tmp_path / "var", portal_base_url="https://p")
    app = create_app(settings)
    email_settings = Settings(
        email_channel="smtp", smtp_host=smtp_server.hostname, smtp_port=smtp_server.port
    )
    channels = Channels(
        lambda: build_email_channel(email_settings),
        sms=lambda: build_sms_channel(Settings(sms_outbox_dir=tmp_path / "sms")),
    )
    config = dispatch.DispatchConfig(portal_base_url="https://p")

    def send_now(ids: list[int]) -> None:
        with app.state.session_factory() as worker_session:
            dispatch.dispatch(worker_session, ids, channels=channels, config=config)

    app.state.enqueue_dispatch = send_now
    with TestClient(app, base_url="https://p") as test_client:
        yield test_client


def login(client: TestClient, **body: str) -> Any:
    return client.post("/portal/login", json={"portal": "zylker", **body})


def test_login_me_and_logout_over_the_api(
    session: Session, tmp_path: Path, client: TestClient
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    answer = login(client, email=user.email, password=PASSWORD)
    assert answer.status_code == 200, answer.text
    token = answer.json()["session_token"]
    assert answer.cookies.get(SESSION_COOKIE) == token
    assert "httponly" in answer.headers["set-cookie"].lower()

    client.cookies.clear()
    me = client.get("/portal/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json() | {"session_expires_at": None} == {
        "portal_user_id": user.id,
        "org_id": user.org_id,
        "user_type_id": user.user_type_id,
        "user_type": "Client Portal",
        "status": "confirmed",
        "email": user.email,
        "phone": None,
        "language": "fr",
        "time_zone": "Europe/Paris",
        "session_expires_at": None,
    }
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/portal/me").status_code == 200  # the cookie works as well

    out = client.post("/portal/logout")
    assert (out.status_code, out.json()) == (200, {"ended": True})
    gone = client.get("/portal/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    assert gone.headers["content-type"] == "application/problem+json"
    assert (gone.json()["code"], gone.json()["problem"]) == ("unauthorized", "session_ended")
    nothing = client.get("/portal/me", headers={"Authorization": "Bearer"})
    assert nothing.json()["problem"] == "no_session"


def test_refusals_are_problems_that_do_not_tell_whether_an_account_exists(
    session: Session, tmp_path: Path, client: TestClient
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    wrong = login(client, email=user.email, password="not it at all")
    nobody = login(client, email="nobody@customer.example.org", password=PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()
    assert wrong.json()["code"] == "sign_in_refused"
    assert wrong.json()["problem"] == "invalid_credentials"

    both = login(client, email=user.email, phone="+919812345678", password=PASSWORD)
    assert both.status_code == 422 and "either 'email' or 'phone'" in both.json()["detail"]
    unknown_portal = client.post(
        "/portal/login", json={"portal": "nope", "email": user.email, "password": PASSWORD}
    )
    assert unknown_portal.status_code == 404

    opened = login(client, email=user.email, password=PASSWORD).json()["session_token"]
    lifecycle.transition(session, user, Action.DEACTIVATE)
    session.commit()
    refused = login(client, email=user.email, password=PASSWORD)
    assert (refused.status_code, refused.json()["problem"]) == (403, "deactivated")
    me = client.get("/portal/me", headers={"Authorization": f"Bearer {opened}"})
    assert me.status_code == 401  # deactivating ended the session


def test_forgot_and_reset_over_the_api(
    session: Session, tmp_path: Path, client: TestClient, smtp_server: SmtpServer
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    opened = login(client, email=user.email, password=PASSWORD).json()["session_token"]
    unknown = client.post(
        "/portal/password/forgot", json={"portal": "zylker", "email": "x@customer.example.org"}
    )
    known = client.post("/portal/password/forgot", json={"portal": "zylker", "email": user.email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    [received] = smtp_server.messages  # only the known account got an email
    message = email.message_from_bytes(received.content, policy=default_policy)
    match = RESET_TOKEN.search(message.get_body(("plain",)).get_content())  # type: ignore[attr-defined]
    assert match
    token = match.group(1)

    weak = client.post("/portal/password/reset", json={"token": token, "password": "Password1234"})
    assert weak.status_code == 422
    done = client.post("/portal/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json() == {"portal_user_id": user.id, "sessions_ended": 1}
    assert (
        client.get("/portal/me", headers={"Authorization": f"Bearer {opened}"}).status_code == 401
    )
    again = client.post("/portal/password/reset", json={"token": token, "password": NEW_PASSWORD})
    assert (again.status_code, again.json()["code"], again.json()["problem"]) == (
        400,
        "invalid_token",
        "used",
    )
    assert login(client, email=user.email, password=NEW_PASSWORD).status_code == 200


def test_a_code_by_sms_signs_in_over_the_api(
    session: Session, tmp_path: Path, client: TestClient
) -> None:
    _org, user = confirmed_agent(session, tmp_path)
    asked = client.post("/portal/login/code", json={"portal": "zylker", "phone": "98123 45678"})
    assert asked.status_code == 202, asked.text
    [sent] = sorted((tmp_path / "sms").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)[-1:]
    code = json.loads(sent.read_text())["body"].split()[0]
    assert re.fullmatch(r"\d{6}", code)
    answer = login(client, phone="+919812345678", code=code)
    assert answer.status_code == 200, answer.text
    assert answer.json()["portal_user_id"] == user.id
    assert login(client, phone="+919812345678", code=code).status_code == 401  # used up
    bad = client.post("/portal/login/code", json={"portal": "zylker", "phone": "12"})
    assert bad.status_code == 422


def test_the_sign_in_page_needs_its_csrf_token_and_opens_the_account_page(
    session: Session, tmp_path: Path, client: TestClient
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    page = client.get("/zylker/sign-in")
    assert page.status_code == 200 and "Sign in to Zylker" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    csrf_token = CSRF_FIELD.search(page.text)
    assert csrf_token
    form = {"step": "password", "login": user.email, "password": PASSWORD}
    forged = client.post("/zylker/sign-in", data=form, follow_redirects=False)
    assert forged.status_code == 403
    wrong = client.post(
        "/zylker/sign-in",
        data=form | {"password": "nope", "csrf_token": csrf_token.group(1)},
        follow_redirects=False,
    )
    assert wrong.status_code == 401 and "not right" in wrong.text
    signed_in = client.post(
        "/zylker/sign-in", data=form | {"csrf_token": csrf_token.group(1)}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/zylker/account"
    account = client.get("/zylker/account")
    assert account.status_code == 200 and user.email in account.text
    assert client.get("/nope/sign-in").status_code == 404
    client.cookies.clear()
    assert client.get("/zylker/account", follow_redirects=False).status_code == 303


def test_a_reset_link_that_does_not_work_says_so_without_naming_anyone(
    session: Session, tmp_path: Path, client: TestClient
) -> None:
    confirmed_email_user(session, tmp_path)
    page = client.get("/zylker/reset-password?token=no-such-token")
    assert page.status_code == 404
    assert "This link does not work" in page.text and "Zylker" not in page.text
    forgot = client.get("/zylker/forgot-password")
    assert forgot.status_code == 200 and "Reset your password" in forgot.text
    csrf_token = CSRF_FIELD.search(forgot.text)
    assert csrf_token
    bad = client.post(
        "/zylker/forgot-password", data={"login": "not a login", "csrf_token": csrf_token.group(1)}
    )
    assert bad.status_code == 422 and "Indian mobile number" in bad.text
