"""Sign-in, forgot password and reset in headless Chromium, on the real app under uvicorn.

``PORTALFLOW_UPDATE_SCREENSHOTS=1`` also saves the sign-in page as ``docs/sign-in-page.png``.

The app runs on PostgreSQL; the messages it queues (the reset email, the verification SMS)
are sent by the real dispatch pipeline into the file outboxes, and Chromium follows the
link or types the code found there, as the portal user would.
"""

from __future__ import annotations

import email
import json
import os
import re
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

from portalflow.config import Settings
from portalflow.models import PortalSession, make_session_factory
from portalflow.pipelines.delivery import credits, dispatch
from portalflow.pipelines.delivery.channels import build_email_channel, build_sms_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import acceptance
from portalflow.pipelines.tenancy import orgs
from portalflow.web.app import create_app

from ..app_server import bound_socket, serving_app
from ..conftest import wait_for
from ..delivery.test_sms_dispatch import add_agent, sms_world
from ..delivery.test_sms_dispatch import invite as sms_invite
from ..factories import start_and_expand
from ..invitations.test_acceptance import PASSWORD, make_world
from ..web.test_ops_browser import RELOADING, chromium  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.postgres]

NEW_PASSWORD = "velvet-harbour-quince-9"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "sign-in-page.png"
TOKEN_LINK = re.compile(r"https?://\S+?/(?:accept|reset-password)\?token=[A-Za-z0-9_\-]+")


@pytest.fixture
def served(pg_engine: Engine, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The app under uvicorn, whose queued messages the real dispatch sends to the outboxes."""
    sock = bound_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    database_url = pg_engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=database_url, var_dir=tmp_path / "var", portal_base_url=f"{base_url}/portal"
    )
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    channels = Channels(
        lambda: build_email_channel(Settings(outbox_dir=outbox)),
        sms=lambda: build_sms_channel(Settings(sms_outbox_dir=outbox / "sms")),
    )
    config = dispatch.DispatchConfig(portal_base_url=f"{base_url}/portal")
    app = create_app(settings)
    factory = make_session_factory(pg_engine)
    dispatched: list[dispatch.DispatchResult] = []

    def send(ids: list[int]) -> dispatch.DispatchResult:
        with factory() as worker_session:
            result = dispatch.dispatch(worker_session, ids, channels=channels, config=config)
        dispatched.append(result)  # only now is the send recorded: the link works from here
        return result

    app.state.enqueue_dispatch = send
    with factory() as session, serving_app(app, sock):
        yield {
            "base_url": base_url,
            "session": session,
            "outbox": outbox,
            "send": send,
            "dispatched": dispatched,
        }


def newest_link(outbox: Path) -> str:
    newest = max(outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    message = email.message_from_bytes(newest.read_bytes(), policy=default_policy)
    match = TOKEN_LINK.search(message.get_body(("plain",)).get_content())  # type: ignore[attr-defined]
    assert match, "no portal link in the email"
    return match.group(0)


def page_of(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "main").get_attribute("data-page") or ""


def click_and_wait(driver: WebDriver, button: str, page: str) -> None:
    """Click, wait for the old page to go (the next may be the same page), then the new one."""
    before = driver.find_element(By.TAG_NAME, "main")
    driver.find_element(By.ID, button).click()
    WebDriverWait(driver, 15).until(lambda _d: _gone(before))
    WebDriverWait(driver, 15, ignored_exceptions=(*RELOADING, WebDriverException)).until(
        lambda d: (
            page_of(d) == page and d.execute_script("return document.readyState") == "complete"
        )
    )


def _gone(element: Any) -> bool:
    """Whether ``element`` left the document (Chromium says so in more than one way)."""
    try:
        element.is_enabled()
    except WebDriverException:  # stale, or "does not belong to the document"
        return True
    return False


def fill(driver: WebDriver, **fields: str) -> None:
    for field_id, value in fields.items():
        element = driver.find_element(By.ID, field_id)
        element.clear()
        element.send_keys(value)


def test_forgot_reset_sign_in_and_sign_out_in_the_browser(
    chromium: WebDriver,  # noqa: F811
    served: dict[str, Any],
) -> None:
    session = served["session"]
    world = make_world(session, served["outbox"])
    world["inviter"].language = "en"
    session.commit()
    _run, [invitation_id] = start_and_expand(session, world["org"], world["inviter"], ["c0"])
    served["send"]([invitation_id])
    token = newest_link(served["outbox"]).rsplit("=", 1)[1]
    address = acceptance.accept_invitation(session, token, password=PASSWORD).email
    session.commit()
    assert address
    portal = f"{served['base_url']}/portal/zylker"

    chromium.set_window_size(900, 1000)
    chromium.get(f"{portal}/sign-in")
    assert chromium.find_element(By.TAG_NAME, "h1").text == "Sign in to Zylker"
    if os.environ.get("PORTALFLOW_UPDATE_SCREENSHOTS") == "1":
        chromium.save_screenshot(str(SCREENSHOT))
    fill(chromium, login=address, password="not my password at all")
    click_and_wait(chromium, "submit", "signin")
    assert "not right" in chromium.find_element(By.ID, "error").text

    chromium.find_element(By.ID, "forgot").click()
    WebDriverWait(chromium, 15, ignored_exceptions=RELOADING).until(
        lambda d: page_of(d) == "forgot"
    )
    fill(chromium, login=address)
    click_and_wait(chromium, "submit", "forgot_sent")
    assert chromium.find_element(By.TAG_NAME, "h1").text == "Check your messages"

    # The message is written after the page answered (its timing must tell nothing), and
    # its link works once the send is recorded, a moment after the file is written.
    wait_for(lambda: len(served["dispatched"]) == 2)
    assert len(list(served["outbox"].glob("*.eml"))) == 2
    link = newest_link(served["outbox"])
    assert link.startswith(f"{portal}/reset-password?token=")
    chromium.get(link)
    assert page_of(chromium) == "reset"
    assert chromium.find_element(By.TAG_NAME, "h1").text == "Choose a new password"
    fill(chromium, password="Password1234", password_confirm="Password1234")
    click_and_wait(chromium, "submit", "reset")
    assert "too easy to guess" in chromium.find_element(By.ID, "error").text
    fill(chromium, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    click_and_wait(chromium, "submit", "reset_done")
    chromium.get(link)
    assert chromium.find_element(By.TAG_NAME, "h1").text == "This link was already used"

    chromium.get(f"{portal}/sign-in")
    fill(chromium, login=address, password=NEW_PASSWORD)
    click_and_wait(chromium, "submit", "account")
    assert address in chromium.find_element(By.ID, "who").text
    assert chromium.get_cookie("portalflow_session")["httpOnly"] is True  # type: ignore[index]
    session.expire_all()
    [live] = session.query(PortalSession).filter(PortalSession.ended_at.is_(None)).all()
    session.commit()

    click_and_wait(chromium, "sign-out", "signed_out")
    session.refresh(live)
    assert live.end_reason is not None and live.end_reason.value == "logout"
    session.commit()
    chromium.get(f"{portal}/account")
    assert page_of(chromium) == "signin"  # signed out: back to the sign-in page


def test_signing_in_with_a_code_by_sms_in_the_browser(
    chromium: WebDriver,  # noqa: F811
    served: dict[str, Any],
) -> None:
    session = served["session"]
    org, agents, inviter = sms_world(session)
    orgs.configure_sms(session, org.id, sender_id="ZYLKER")
    credits.add(session, org.id, 5)
    add_agent(session, org, "a1", "+91 98123 45678", first_name="Arjun")
    session.commit()
    _started, [invitation_id] = sms_invite(session, org, agents, inviter, ["a1"])
    served["send"]([invitation_id])
    [invite_sms] = (served["outbox"] / "sms").glob("*.json")
    short_code = json.loads(invite_sms.read_text())["body"].split("https://in.zcrm.to/")[1]
    acceptance.accept_invitation(session, short_code.split()[0], password=PASSWORD)
    session.commit()

    chromium.get(f"{served['base_url']}/portal/zylker/sign-in")
    fill(chromium, **{"code-phone": "98123 45678"})
    click_and_wait(chromium, "send-code", "signin")
    assert "a code is on its way" in chromium.find_element(By.ID, "notice").text
    wait_for(lambda: len(served["dispatched"]) == 2)
    assert len(list((served["outbox"] / "sms").glob("*.json"))) == 2
    newest = max((served["outbox"] / "sms").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    code = json.loads(newest.read_text())["body"].split()[0]
    assert re.fullmatch(r"\d{6}", code)
    fill(chromium, code=code)
    click_and_wait(chromium, "submit-code", "account")
    assert "+919812345678" in chromium.find_element(By.ID, "who").text
