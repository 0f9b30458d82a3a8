"""The recipient's pages in headless Chromium, from the links of real outbox messages.

The real app runs under uvicorn on PostgreSQL; invitations are sent by a real bulk run into
the file outboxes (``.eml`` and SMS ``.json``), and Chromium opens the link found there,
fills the form and submits it, as the recipient would.

``PORTALFLOW_UPDATE_SCREENSHOTS=1`` also saves the accept page as ``docs/accept-page.png``.
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
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import Invitation, PortalUser, PortalUserStatus, make_session_factory
from portalflow.pipelines.delivery import credits, dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel, build_sms_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import acceptance, password_hashes, reinvite
from portalflow.pipelines.users import lifecycle
from portalflow.web.app import create_app

from ..app_server import bound_socket, serving_app
from ..delivery.test_sms_dispatch import add_agent, sms_world
from ..delivery.test_sms_dispatch import invite as sms_invite
from ..factories import start_and_expand
from ..invitations.test_acceptance import PASSWORD, make_world
from .test_ops_browser import RELOADING, chromium  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.postgres]

NEW_PASSWORD = "velvet-harbour-quince-9"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "accept-page.png"
LINK = re.compile(r"https?://\S+?/(?:accept|confirm-email)\?token=[A-Za-z0-9_\-]+")
SHORT_LINK = re.compile(r"https://in\.zcrm\.to/([A-Za-z0-9]+)")


@pytest.fixture
def served(pg_engine: Engine, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The app under uvicorn, its base URL, a session and a dispatcher using that URL."""
    sock = bound_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    database_url = pg_engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=database_url, var_dir=tmp_path / "var", portal_base_url=f"{base_url}/portal"
    )
    outbox = tmp_path / "outbox"
    channels = Channels(
        lambda: build_email_channel(Settings(outbox_dir=outbox)),
        sms=lambda: build_sms_channel(Settings(sms_outbox_dir=outbox / "sms")),
    )
    config = dispatch_config.DispatchConfig(portal_base_url=f"{base_url}/portal")
    with make_session_factory(pg_engine)() as session, serving_app(create_app(settings), sock):
        yield {
            "base_url": base_url,
            "session": session,
            "outbox": outbox,
            "send": lambda ids: dispatch.dispatch(session, ids, channels=channels, config=config),
        }


def newest_email_link(outbox: Path) -> str:
    """The link in the plain-text part of the newest ``.eml`` of the outbox."""
    newest = max(outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    message = email.message_from_bytes(newest.read_bytes(), policy=default_policy)
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    match = LINK.search(body.get_content())
    assert match, "no portal link in the email"
    return match.group(0)


def heading(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def submit_and_wait(driver: WebDriver, page: str) -> None:
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 15, ignored_exceptions=RELOADING).until(
        lambda d: d.find_element(By.TAG_NAME, "main").get_attribute("data-page") == page
    )


def fill_accept_form(driver: WebDriver, password: str) -> None:
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "password_confirm").send_keys(password)
    Select(driver.find_element(By.ID, "language")).select_by_value("en")
    Select(driver.find_element(By.ID, "time_format")).select_by_value("24h")
    Select(driver.find_element(By.ID, "time_zone")).select_by_visible_text("Asia/Kolkata")


def user_of(session: Session, invitation_id: int) -> PortalUser:
    session.expire_all()
    invitation = session.get_one(Invitation, invitation_id)
    user = session.get_one(PortalUser, invitation.portal_user_id)
    session.commit()
    return user


def test_accepting_from_the_link_of_a_real_invitation_email(
    chromium: WebDriver,  # noqa: F811
    served: dict[str, Any],
    tmp_path: Path,
) -> None:
    session = served["session"]
    world = make_world(session, served["outbox"])
    _run, [invitation_id] = start_and_expand(session, world["org"], world["inviter"], ["c0"])
    assert served["send"]([invitation_id]).sent == [invitation_id]
    session.commit()
    link = newest_email_link(served["outbox"])
    assert link.startswith(served["base_url"] + "/portal/zylker/accept?token=")

    chromium.set_window_size(900, 1150)
    chromium.get(link)
    assert heading(chromium) == "Join Zylker"
    assert "Zylker has invited you" in chromium.page_source
    shot = tmp_path / "accept-page.png"
    chromium.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("PORTALFLOW_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.write_bytes(shot.read_bytes())

    # A weak password is refused on the page; nothing is accepted yet.
    fill_accept_form(chromium, "Password1234")
    submit_and_wait(chromium, "accept")
    assert "too easy to guess" in chromium.find_element(By.ID, "error").text
    assert user_of(session, invitation_id).status == PortalUserStatus.INVITED

    fill_accept_form(chromium, NEW_PASSWORD)
    submit_and_wait(chromium, "accepted")
    assert heading(chromium) == "You are in"
    user = user_of(session, invitation_id)
    assert user.status == PortalUserStatus.CONFIRMED
    assert (user.language, user.time_format, user.time_zone) == ("en", "24h", "Asia/Kolkata")
    assert password_hashes.verify_password(NEW_PASSWORD, user.password_hash)

    chromium.get(link)
    assert heading(chromium) == "This link was already used"


def test_accepting_from_an_sms_short_link(
    chromium: WebDriver,  # noqa: F811
    served: dict[str, Any],
) -> None:
    session = served["session"]
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 5)
    add_agent(session, org, "a1", "+91 98123 45678", first_name="Arjun")
    session.commit()
    _started, [invitation_id] = sms_invite(session, org, agents, inviter, ["a1"])
    assert served["send"]([invitation_id]).sent == [invitation_id]
    session.commit()
    [sms] = (served["outbox"] / "sms").glob("*.json")
    match = SHORT_LINK.search(json.loads(sms.read_text())["body"])
    assert match, "no short link in the SMS"
    # https://in.zcrm.to/<code> reaches the app as /s/<code> (the proxy rewrite, README).
    short = f"{served['base_url']}/s/{match.group(1)}"

    chromium.get(short)
    assert "/accept?token=" in chromium.current_url
    assert heading(chromium) == "Join Zylker"
    fill_accept_form(chromium, NEW_PASSWORD)
    submit_and_wait(chromium, "accepted")
    assert user_of(session, invitation_id).status == PortalUserStatus.CONFIRMED

    chromium.get(short)
    assert heading(chromium) == "This link was already used"
    chromium.get(f"{served['base_url']}/s/NoSuchCode1")
    assert heading(chromium) == "This link does not work"


def test_confirming_a_changed_email_address(
    chromium: WebDriver,  # noqa: F811
    served: dict[str, Any],
) -> None:
    session = served["session"]
    world = make_world(session, served["outbox"])
    world["inviter"].language = "en"
    session.commit()
    _run, [first] = start_and_expand(session, world["org"], world["inviter"], ["c0"])
    served["send"]([first])
    session.commit()
    token = newest_email_link(served["outbox"]).rsplit("=", 1)[1]
    user = acceptance.accept_invitation(session, token, password=PASSWORD)
    user.email = "new-address@customer.example.org"
    lifecycle.transition(session, user, lifecycle.Action.SUSPEND_LOGIN)
    session.commit()
    confirm_id = reinvite.reinvite(
        session, world["org"].id, user.id, inviter_id=world["inviter"].id
    )
    session.commit()
    assert served["send"]([confirm_id]).sent == [confirm_id]
    session.commit()
    link = newest_email_link(served["outbox"])
    assert "/confirm-email?token=" in link

    chromium.get(link)
    assert heading(chromium) == "Confirm your email address"
    assert "new-address@customer.example.org" in chromium.page_source
    assert user_of(session, confirm_id).status == PortalUserStatus.LOGIN_SUSPENDED  # GET: no change
    submit_and_wait(chromium, "confirmed")
    assert heading(chromium) == "Email address confirmed"
    confirmed = user_of(session, confirm_id)
    assert confirmed.status == PortalUserStatus.CONFIRMED
    assert password_hashes.verify_password(PASSWORD, confirmed.password_hash)  # unchanged

    chromium.get(link)
    assert heading(chromium) == "This link was already used"
