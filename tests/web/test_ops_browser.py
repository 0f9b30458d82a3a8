"""The /ops dashboard in headless Chromium (Debian's chromium and chromedriver, via selenium).

The real app runs under uvicorn on a free port; its Redis broker namespace is seeded with
known numbers, and the page Chromium renders must show exactly those.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

from portalflow.config import Settings
from portalflow.web.app import create_app
from portalflow.workers import actors, queue_stats, recovery_actors

from ..app_server import serving_app
from ..servers import require_binary

TOKEN = "ops-browser-token"
# Root in a container, and no network: no sandbox, and nothing that phones home.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

# What find_element may raise while the page is being replaced by the next one.
RELOADING = (NoSuchElementException, StaleElementReferenceException)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile; Selenium Manager is never asked for anything."""
    binary = require_binary("chromium", "/usr/bin/chromium")
    driver_path = require_binary("chromedriver", "/usr/bin/chromedriver")
    options = Options()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def dead_ids(redis_broker: RedisBroker) -> list[str]:
    """invitations: 3 ready, 2 delayed, 1 in progress; maintenance: 2 dead letters (ids)."""
    for invitation_id in (1, 2, 3, 4):
        actors.dispatch_invitation.send(invitation_id)
    for invitation_id in (98, 99):
        actors.dispatch_invitation.send_with_options(args=(invitation_id,), delay=3_600_000)
    assert len(redis_broker.do_fetch("invitations", 1)) == 1  # taken, not acked
    for _ in range(2):
        recovery_actors.recover_stuck_work.send()
    dead = []
    for body in redis_broker.do_fetch("maintenance", 2):
        message_id = Message.decode(body).options["redis_message_id"]
        redis_broker.do_nack("maintenance", message_id)  # rejected: dead-lettered
        dead.append(message_id)
    assert len(dead) == 2
    return dead


@pytest.fixture
def ops_url(pg_engine: Engine, redis_url: str, redis_broker: RedisBroker) -> Iterator[str]:
    """The real app under uvicorn; its /ops URL with the admin credential in it."""
    database_url = pg_engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=database_url, admin_token=TOKEN, broker_url=redis_url))
    app.state.broker_namespace = redis_broker.namespace
    with serving_app(app) as base_url:
        yield base_url.replace("http://", f"http://admin:{TOKEN}@") + "/ops"


def cells(driver: WebDriver, queue: str) -> dict[str, str]:
    """The numbers Chromium shows in one queue's row, by column."""
    row = driver.find_element(By.CSS_SELECTOR, f'#queues tr[data-queue="{queue}"]')
    return {
        column: row.find_element(By.CSS_SELECTOR, f"td.{column}").text
        for column in ("ready", "delayed", "in-progress", "dead")
    }


def test_the_dashboard_shows_the_seeded_numbers_and_retries_a_dead_letter(
    chromium: WebDriver, ops_url: str, redis_broker: RedisBroker, dead_ids: list[str]
) -> None:
    chromium.get(ops_url)  # HTTP Basic: the browser answers the challenge from the URL
    assert chromium.title == "portalflow ops"
    assert cells(chromium, "invitations") == {
        "ready": "3",
        "delayed": "2",
        "in-progress": "1",
        "dead": "0",
    }
    assert cells(chromium, "maintenance") == {
        "ready": "0",
        "delayed": "0",
        "in-progress": "0",
        "dead": "2",
    }
    assert cells(chromium, "crm-events") == {
        "ready": "0",
        "delayed": "0",
        "in-progress": "0",
        "dead": "0",
    }
    assert int(chromium.find_element(By.ID, "live-workers").text) >= 1
    shown = [
        row.get_attribute("data-message-id")
        for row in chromium.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-message-id]")
    ]
    assert sorted(shown) == sorted(dead_ids)

    # The retry button of one dead letter: a form POST, then the redirect back to /ops.
    retried, kept = dead_ids
    chromium.find_element(
        By.CSS_SELECTOR, f'tr[data-message-id="{retried}"] form[action$="/retry"] button'
    ).click()
    WebDriverWait(chromium, 15, ignored_exceptions=RELOADING).until(
        lambda d: cells(d, "maintenance")["dead"] == "1"
    )
    assert chromium.current_url.endswith("/ops")
    assert cells(chromium, "maintenance") == {
        "ready": "1",
        "delayed": "0",
        "in-progress": "0",
        "dead": "1",
    }
    shown = [
        row.get_attribute("data-message-id")
        for row in chromium.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-message-id]")
    ]
    assert shown == [kept]
    snapshot = queue_stats.snapshot(redis_broker.client, redis_broker.namespace)
    maintenance = next(q for q in snapshot.queues if q.queue == "maintenance")
    assert (maintenance.ready, maintenance.dead) == (1, 1)

    # It refreshes itself: a meta refresh, and a new message shows up with no action of ours.
    refresh = chromium.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert refresh.get_attribute("content") == "10"
    chromium.execute_script("window.portalflowTestMarker = true;")
    actors.dispatch_invitation.send(5)
    WebDriverWait(chromium, 20, poll_frequency=0.5, ignored_exceptions=RELOADING).until(
        lambda d: cells(d, "invitations")["ready"] == "4"
    )
    assert chromium.execute_script("return window.portalflowTestMarker === undefined;")
