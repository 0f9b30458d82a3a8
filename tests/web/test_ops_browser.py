"""The /ops dashboard in headless Chromium (Debian's chromium and chromedriver, via selenium).

The real app runs under uvicorn on a free port; its Redis broker namespace is seeded with
known numbers, and the page Chromium renders must show exactly those. Real workers make the
dead letters and move the bulk runs; the sampler writes the graphs' samples.

With ``PORTALFLOW_OPS_SCREENSHOTS=docs`` the tests also save the README's screenshots
(``ops-page.png``, ``ops-phone.png``, ``ops-run-report.png``) in that folder.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dramatiq import Message, Worker
from dramatiq.brokers.redis import RedisBroker
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine, select

from portalflow.config import Settings
from portalflow.models import Invitation, make_session_factory, utcnow
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.ops import sampler
from portalflow.web.app import create_app
from portalflow.workers import actors, broker, liveness, queue_stats, recovery_actors, scheduler

from ..app_server import serving_app
from ..conftest import wait_for
from ..factories import client_portal, make_inviter, make_org, make_record, start_and_expand
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


SCREENSHOTS = os.environ.get("PORTALFLOW_OPS_SCREENSHOTS")


def screenshot(driver: WebDriver, name: str, width: int) -> None:
    """Save the whole page, ``width`` px wide, when PORTALFLOW_OPS_SCREENSHOTS names a folder."""
    if not SCREENSHOTS:
        return
    driver.set_window_size(width, 800)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(height + 120, 6000))
    time.sleep(0.6)  # let the bars' width transition end before the picture
    driver.save_screenshot(str(Path(SCREENSHOTS) / name))


@pytest.fixture
def consumer(redis_broker: RedisBroker) -> Iterator[Worker]:
    """A registered worker on crm-events only (the seeded queues keep their counts)."""
    redis_broker.add_middleware(liveness.ConsumerRegistry())
    worker = Worker(redis_broker, queues={"crm-events"}, worker_threads=1, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def ops_worker(redis_broker: RedisBroker, worker_settings: Settings) -> Iterator[Worker]:
    """A real worker with the middleware `portalflow worker` has on Redis; started by the test."""
    broker.with_dead_letter_errors(redis_broker)
    redis_broker.add_middleware(liveness.ConsumerRegistry())
    redis_broker.add_middleware(liveness.LatencyFlush())
    worker = Worker(redis_broker, worker_threads=2, worker_timeout=100)
    yield worker
    worker.stop()


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
    chromium: WebDriver,
    ops_url: str,
    redis_broker: RedisBroker,
    dead_ids: list[str],
    consumer: Worker,
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
    # Only the consumer counts: this test's producers (and the app) beat too.
    assert chromium.find_element(By.ID, "live-workers").text == "1"
    worker_row = chromium.find_element(By.CSS_SELECTOR, "#workers-table tr.live")
    assert worker_row.find_element(By.CSS_SELECTOR, "td.pid").text == str(os.getpid())
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


def test_a_dead_letters_error_shows_and_its_retry_works_at_phone_width(
    chromium: WebDriver, ops_url: str, redis_broker: RedisBroker, ops_worker: Worker
) -> None:
    ops_worker.start()
    actors.bulk_invite.send(424242)  # no such chunk: NotFound, dead-lettered with a traceback
    wait_for(lambda: _queue(redis_broker, "invitations").dead == 1)
    ops_worker.stop()  # the retried message must stay on the queue for us to see

    chromium.set_window_size(375, 800)
    chromium.get(ops_url)
    row = chromium.find_element(By.CSS_SELECTOR, "#dead-letters tr[data-message-id]")
    error = row.find_element(By.CSS_SELECTOR, ".error")
    assert error.is_displayed() and error.text.startswith("NotFound: ")
    trace = row.find_element(By.CSS_SELECTOR, "pre.traceback")
    assert not trace.is_displayed()  # folded until asked for
    row.find_element(By.CSS_SELECTOR, "details.traceback summary").click()
    assert trace.is_displayed() and "Traceback (most recent call last)" in trace.text
    # At 375 px the page does not scroll sideways and the buttons are within reach.
    assert chromium.execute_script("return document.documentElement.scrollWidth") <= 375
    retry = row.find_element(By.CSS_SELECTOR, 'form[action$="/retry"] button')
    assert retry.is_displayed()
    assert retry.rect["x"] >= 0 and retry.rect["x"] + retry.rect["width"] <= 375
    screenshot(chromium, "ops-phone.png", 375)
    chromium.set_window_size(375, 800)

    retry.click()
    WebDriverWait(chromium, 15, ignored_exceptions=RELOADING).until(
        lambda d: cells(d, "invitations")["dead"] == "0"
    )
    assert cells(chromium, "invitations")["ready"] == "1"
    assert not chromium.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-message-id]")
    invitations = _queue(redis_broker, "invitations")
    assert (invitations.ready, invitations.dead) == (1, 0)


def _queue(redis_broker: RedisBroker, name: str) -> queue_stats.QueueCounts:
    snap = queue_stats.snapshot(redis_broker.client, redis_broker.namespace)
    return next(q for q in snap.queues if q.queue == name)


def test_graphs_render_with_data_and_a_runs_progress_moves_while_it_runs(
    chromium: WebDriver,
    ops_url: str,
    pg_engine: Engine,
    redis_broker: RedisBroker,
    ops_worker: Worker,
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        make_record(session, org, "boss", email="boss@zylker.com")
        for n in range(6):
            make_record(session, org, f"ok-{n}", email=f"ok{n}@example.org")
        session.commit()
        start_and_expand(session, org, inviter, ["boss", "ghost"])  # finished: 2 failures
        # An hour of history: 40 more failures (no such record), spread over the last hour.
        history, _ = start_and_expand(session, org, inviter, [f"gone-{n}" for n in range(40)])
        spread = session.scalars(
            select(Invitation).where(Invitation.bulk_run_id == history.run_id)
        ).all()
        for n, invitation in enumerate(spread):
            invitation.updated_at = utcnow() - timedelta(minutes=1 + (n * 7) % 55)
        session.commit()
        # Two chunks of three: the test enqueues one, watches, then the other.
        run = bulk.start_bulk_run(
            session,
            org_id=org.id,
            user_type_id=client_portal(session, org).id,
            inviter_id=inviter.id,
            crm_ids=[f"ok-{n}" for n in range(6)],
            chunk_size=3,
        )
        session.commit()
        later = utcnow() + timedelta(minutes=1)
        queues, timings = scheduler.broker_samples(redis_broker)
        assert sampler.take(session, later, queues=queues, timings=timings) > 0

    ops_worker.start()  # live, and idle until the test enqueues a chunk
    chromium.get(ops_url)
    assert chromium.find_element(By.ID, "live-workers").text == "1"
    # Graphs: real SVG lines with data (the two failures of the finished run).
    failures = chromium.find_element(By.ID, "chart-failures")
    assert failures.get_attribute("data-empty") == "false"
    line = failures.find_element(By.CSS_SELECTOR, "svg polyline")
    assert line.get_attribute("data-label") == "invitations:email"
    assert line.rect["width"] > 100 and line.rect["height"] > 10  # drawn, with a peak
    legend = failures.find_element(By.CSS_SELECTOR, 'li[data-label="invitations:email"]')
    assert "42 in all" in legend.text
    depth = chromium.find_element(By.ID, "chart-depth")
    assert depth.find_elements(By.CSS_SELECTOR, "svg polyline, svg circle")

    # The run waits for a worker: nothing sent yet.
    bar = f'#running-runs tr[data-run="{run.run_id}"]'
    sent = chromium.find_element(By.CSS_SELECTOR, f"{bar} .counts .sent")
    assert sent.text == "0"
    assert chromium.find_element(By.CSS_SELECTOR, f"{bar} .counts .requested").text == "6"
    chromium.execute_script("window.portalflowTestMarker = true;")
    actors.bulk_invite.send(run.chunk_ids[0])
    # The bar moves in place (the page's script polls), before any reload.
    WebDriverWait(chromium, 20, poll_frequency=0.2, ignored_exceptions=RELOADING).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"{bar} .counts .sent").text == "3"
    )
    assert chromium.execute_script("return window.portalflowTestMarker === true;")
    width = chromium.find_element(By.CSS_SELECTOR, f"{bar} .seg.sent").get_attribute("style")
    assert re.search(r"width: 50(\.0+)?%", width), width
    screenshot(chromium, "ops-page.png", 1280)
    chromium.set_window_size(1280, 900)

    # The last chunk: the run finishes and moves to the recent runs, linking its report.
    actors.bulk_invite.send(run.chunk_ids[1])
    report_link = f'#recent-runs tr[data-run="{run.run_id}"] a'
    WebDriverWait(chromium, 25, poll_frequency=0.3, ignored_exceptions=RELOADING).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, report_link)
    )
    chromium.find_element(By.CSS_SELECTOR, '#recent-runs a[href$="/ops/runs/1"]').click()
    WebDriverWait(chromium, 10, ignored_exceptions=RELOADING).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#reasons tr[data-reason="company_domain"]')
    )
    assert chromium.title == "bulk run 1: failure report"
    screenshot(chromium, "ops-run-report.png", 1280)
