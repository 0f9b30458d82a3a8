"""What issue 18 added to /ops: dead letters' errors and bulk actions, bulk runs' progress
and failure pages, the per-minute sampler and its charts, provider latency, the namespace.

Real parts throughout: PostgreSQL, Redis, a real Dramatiq worker with portalflow's
middleware, the app under FastAPI's test client.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dramatiq import Message, Worker
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import BulkRun, OpsSample, ScheduledRun, make_session_factory, utcnow
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.ops import charts, latency, ops_stats, sampler
from portalflow.web.app import create_app
from portalflow.workers import actors, broker, liveness, queue_stats, scheduler

from ..conftest import wait_for
from ..factories import client_portal, make_inviter, make_org, make_record, start_and_expand

TOKEN = "ops-dashboard-token"
BASIC = ("admin", TOKEN)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def factory(pg_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(pg_engine)


@pytest.fixture
def ops_worker(redis_broker: RedisBroker, worker_settings: Settings) -> Iterator[Worker]:
    """A real worker with the middleware `portalflow worker` runs on Redis."""
    broker.with_dead_letter_errors(redis_broker)
    redis_broker.add_middleware(liveness.ConsumerRegistry())
    redis_broker.add_middleware(liveness.LatencyFlush())
    worker = Worker(redis_broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def client(pg_engine: Engine, redis_url: str, redis_broker: RedisBroker) -> Iterator[TestClient]:
    url = pg_engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        admin_token=TOKEN,
        broker_url=redis_url,
        broker_namespace=redis_broker.namespace,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def dead_count(redis_broker: RedisBroker, queue: str = "invitations") -> int:
    snap = queue_stats.snapshot(redis_broker.client, redis_broker.namespace)
    return next(q.dead for q in snap.queues if q.queue == queue)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="(\w+)"', html).group(1)


def dead_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-message-id="([^"]+)">', html)


def test_dead_letters_show_their_error_and_traceback_and_go_back_in_bulk(
    client: TestClient, redis_broker: RedisBroker, ops_worker: Worker
) -> None:
    for missing_chunk in (424242, 424243):
        actors.bulk_invite.send(missing_chunk)  # NotFound: dead-lettered with its traceback
    actors.dispatch_invitation.send_with_options(args=("not", "an", "id"))  # malformed
    wait_for(lambda: dead_count(redis_broker) == 3)
    ops_worker.stop()  # what is retried now stays on the queue for the test to see

    html = client.get("/ops", auth=BASIC).text
    assert len(dead_rows(html)) == 3
    errors = re.findall(r'<span class="error">([^<]*)</span>', html)
    assert sorted(e.split(":")[0] for e in errors) == ["MalformedMessage", "NotFound", "NotFound"]
    assert any("dispatch_invitation" in e for e in errors)
    tracebacks = re.findall(r'<pre class="traceback">(.*?)</pre>', html, re.S)
    assert len(tracebacks) == 2
    assert all("Traceback (most recent call last)" in t for t in tracebacks)
    assert '<option value="bulk_invite">' in html

    only = client.get("/ops", params={"actor": "bulk_invite"}, auth=BASIC).text
    assert len(dead_rows(only)) == 2 and "MalformedMessage" not in only

    csrf = csrf_of(html)
    path = "/ops/dead/invitations"
    # Without the confirmation nothing moves.
    refused = client.post(f"{path}/retry-all", auth=BASIC, data={"csrf": csrf})
    assert refused.status_code == 422 and "confirm" in refused.json()["detail"]
    assert client.post(f"{path}/retry-all", auth=BASIC, data={"confirm": "yes"}).status_code == 403
    assert dead_count(redis_broker) == 3
    # Retry all of one actor: back on the queue, the others stay dead.
    moved = client.post(
        f"{path}/retry-all",
        auth=BASIC,
        data={"csrf": csrf, "confirm": "yes", "actor": "bulk_invite"},
        follow_redirects=False,
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/ops?actor=bulk_invite"
    snap = queue_stats.snapshot(redis_broker.client, redis_broker.namespace)
    invitations = next(q for q in snap.queues if q.queue == "invitations")
    assert (invitations.ready, invitations.dead) == (2, 1)
    # Discard all: the malformed one is gone for good.
    gone = client.post(f"{path}/discard-all", auth=BASIC, data={"csrf": csrf, "confirm": "yes"})
    assert gone.status_code == 200  # followed back to /ops
    assert dead_count(redis_broker) == 0
    assert "None." in gone.text


def test_running_runs_have_progress_rate_and_eta_and_finished_ones_a_report_page(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    with factory() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        make_record(session, org, "boss", email="boss@zylker.com")  # company_domain
        for n in range(3):
            make_record(session, org, f"ok-{n}", email=f"ok{n}@example.org")
        session.commit()
        running, _ = start_and_expand(session, org, inviter, ["boss", "ghost", "ok-0", "ok-1"])
        done, _ = start_and_expand(session, org, inviter, ["boss", "ghost"])
        # The running run started two minutes ago: 2 decided, so 1/min and 2 min to go.
        run = session.get_one(BulkRun, running.run_id)
        run.created_at = utcnow() - timedelta(minutes=2)
        session.commit()
        [progress] = ops_stats.running_runs(session)
        assert (progress.id, progress.requested, progress.failed, progress.queued) == (
            running.run_id,
            4,
            2,
            2,
        )
        assert progress.per_minute == pytest.approx(1.0, rel=0.05)
        assert progress.eta_seconds == pytest.approx(120, rel=0.05)
        [recent] = ops_stats.recent_runs(session)
        assert recent.id == done.run_id

    html = client.get("/ops", auth=BASIC).text
    row = re.search(rf'<tr data-run="{running.run_id}">(.*?)</tr>', html, re.S).group(1)
    assert 'class="seg failed" style="width: 50.00%"' in row
    assert 'class="seg queued" style="width: 50.00%"' in row
    assert re.search(r'class="rate">1/min<', row)
    assert re.search(r'class="eta">\d+ min \d\d s<', row)
    assert f'href="/ops/runs/{done.run_id}">#{done.run_id} failure report' in html
    assert '<script src="/ops/ops.js"' in html
    assert "fetch(" in client.get("/ops/ops.js").text

    polled = client.get("/ops/runs.json", auth=BASIC).json()["running"]
    assert [(r["id"], r["failed"], r["queued"], r["requested"]) for r in polled] == [
        (running.run_id, 2, 2, 4)
    ]
    assert client.get("/ops/runs.json").status_code == 401

    report = client.get(f"/ops/runs/{done.run_id}", auth=BASIC)
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    page = report.text
    assert (
        '<tr data-reason="company_domain">' in page and '<tr data-reason="record_missing">' in page
    )
    assert "ghost" in page and "boss@zylker.com" in page
    assert client.get("/ops/runs/999999", auth=BASIC).status_code == 404
    assert client.get(f"/ops/runs/{done.run_id}").status_code == 401


def test_the_sampler_fills_its_minutes_once_and_keeps_25_hours(
    factory: sessionmaker[Session], redis_broker: RedisBroker
) -> None:
    with factory() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        start_and_expand(session, org, inviter, ["ghost-1", "ghost-2"])  # 2 failed, now
        actors.dispatch_invitation.send(1)  # one ready message on invitations
        old = utcnow() - timedelta(hours=26)
        session.add(OpsSample(at=old, series="done", label="crm-events", value=1))
        session.add(ScheduledRun(job="ops_sample", started_at=old, result="enqueued"))
        session.commit()

        queues, timings = scheduler.broker_samples(redis_broker)
        later = utcnow() + timedelta(minutes=1)
        written = sampler.take(
            session, later, queues=queues, timings=timings, prune_job="ops_sample"
        )
        assert written > 0
        again = sampler.take(session, later, queues=queues, timings=timings, prune_job="ops_sample")
        assert again == 0  # the same minute
        assert session.scalar(select(func.min(OpsSample.at))) > old
        assert session.scalar(select(func.count()).select_from(ScheduledRun)) == 0

        minute = sampler.minute_floor(later) - sampler.MINUTE
        rows = session.execute(
            select(OpsSample.series, OpsSample.label, OpsSample.value).where(OpsSample.at == minute)
        ).all()
        values = {(s, label): v for s, label, v in rows}
        assert values[("depth", "invitations")] == 1
        failed = select(func.sum(OpsSample.value)).where(
            OpsSample.series == "failed", OpsSample.label == "invitations:email"
        )
        assert session.scalar(failed) == 2  # in this minute or the one before
        assert values[("dead", "maintenance")] == 0
        # The first run filled the hour before from the database: zeros, not gaps.
        assert (
            session.scalar(
                select(func.count(func.distinct(OpsSample.at))).where(OpsSample.series == "failed")
            )
            == sampler.CATCH_UP
        )

        graphs = {c.key: c for c in charts.ops_charts(session, "1h", later)}
        failures = graphs["failures"]
        assert not failures.empty
        [line] = failures.lines
        assert line.label == "invitations:email" and line.total == 2
        # 60 buckets up to the minute under way (a gap until sampled): 59 sampled points.
        assert len(line.segments) == 1 and len(line.segments[0].split()) == 59
        assert not graphs["depth"].empty
        assert graphs["latency"].empty  # no provider call yet
        day = {c.key: c for c in charts.ops_charts(session, "24h", later)}
        assert day["failures"].lines[0].total == 2


def test_provider_calls_are_timed_into_the_latency_chart(
    client: TestClient,
    factory: sessionmaker[Session],
    redis_broker: RedisBroker,
    ops_worker: Worker,
) -> None:
    latency.drain()
    with factory() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        for n in range(5):
            make_record(session, org, f"ok-{n}", email=f"ok{n}@example.org")
        session.commit()
        started = bulk.start_bulk_run(
            session,
            org_id=org.id,
            user_type_id=client_portal(session, org).id,
            inviter_id=inviter.id,
            crm_ids=[f"ok-{n}" for n in range(5)],
        )
        session.commit()
    for chunk_id in started.chunk_ids:
        actors.bulk_invite.send(chunk_id)
    wait_for(lambda: _sent(factory, started.run_id) == 5)
    key = f"{redis_broker.namespace}:{latency.KEY}:email:*"
    wait_for(lambda: bool(redis_broker.client.keys(key)))
    timings = [
        float(v)
        for k in redis_broker.client.keys(key)
        for v in redis_broker.client.lrange(k, 0, -1)
    ]
    assert len(timings) == 5 and all(t >= 0 for t in timings)

    with factory() as session:
        later = utcnow() + timedelta(minutes=2)
        queues, reader = scheduler.broker_samples(redis_broker)
        sampler.take(session, later, queues=queues, timings=reader)
        p95 = session.scalars(
            select(OpsSample.value).where(OpsSample.series == "latency_p95")
        ).all()
        assert p95 and max(p95) == pytest.approx(max(timings))
        chart = next(c for c in charts.ops_charts(session, "1h", later) if c.key == "latency")
        assert {line.label for line in chart.lines} == {"email p50", "email p95"}
    html = client.get("/ops", auth=BASIC).text
    assert 'id="chart-latency" data-lines="2" data-empty="false"' in html
    metrics = client.get("/metrics").text
    assert re.search(
        r'portalflow_provider_latency_milliseconds\{channel="email",quantile="0.95"\} [0-9.e+-]+',
        metrics,
    )


def _sent(factory: sessionmaker[Session], run_id: int) -> int:
    with factory() as session:
        return session.get_one(BulkRun, run_id).sent


def test_the_sampler_is_a_scheduled_job_every_minute(
    factory: sessionmaker[Session], redis_broker: RedisBroker, worker_settings: Settings
) -> None:
    [job] = [j for j in scheduler.default_jobs(worker_settings) if j.name == "ops_sample"]
    assert job.actor is scheduler.sample_ops_metrics
    now = utcnow()
    assert scheduler.latest_slot(job, now) == now.replace(second=0, microsecond=0)
    scheduler.sample_ops_metrics.fn()  # what a worker runs for the job's message
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(OpsSample)) > 0


def test_the_namespace_applies_to_the_broker(redis_url: str) -> None:
    namespace = f"portalflow-ns-{time.monotonic_ns()}"
    made = broker.make_broker(Settings(broker_url=redis_url, broker_namespace=namespace))
    try:
        assert made.namespace == namespace
        made.enqueue(Message("maintenance", "recover_stuck_work", (), {}, {}))
        snap = queue_stats.snapshot(made.client, namespace)
        assert next(q for q in snap.queues if q.queue == "maintenance").ready == 1
        assert made.client.hlen(f"{namespace}:maintenance.msgs") == 1
    finally:
        keys = made.client.keys(f"{namespace}*")
        if keys:
            made.client.delete(*keys)
        made.close()
