"""The ops page, /metrics and `portalflow queues` on a seeded Redis broker."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from dramatiq import Message, Worker
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import ScheduledRun, utcnow
from portalflow.pipelines.ops import ops_stats
from portalflow.web.app import create_app
from portalflow.workers import actors, liveness, queue_stats, recovery_actors

from ..cli_runner import run
from ..factories import make_inviter, make_org, make_record, start_and_expand

TOKEN = "ops-admin-token"
BASIC = ("admin", TOKEN)

pytestmark = pytest.mark.redis


@pytest.fixture
def seeded(redis_broker: RedisBroker) -> dict[str, Any]:
    """invitations: 2 ready, 1 delayed, 1 in progress; maintenance: 1 dead letter."""
    for invitation_id in (1, 2, 3):
        actors.dispatch_invitation.send(invitation_id)
    actors.dispatch_invitation.send_with_options(args=(99,), delay=3_600_000)
    # A worker takes the first invitation message and has not acked it yet.
    assert len(redis_broker.do_fetch("invitations", 1)) == 1
    # A maintenance message fetched and rejected: Dramatiq moves it to the dead letters.
    recovery_actors.recover_stuck_work.send()
    [body] = redis_broker.do_fetch("maintenance", 1)
    dead_id = Message.decode(body).options["redis_message_id"]
    redis_broker.do_nack("maintenance", dead_id)
    return {"namespace": redis_broker.namespace, "dead_id": dead_id}


@pytest.fixture
def consumer(redis_broker: RedisBroker) -> Iterator[Worker]:
    """A real worker (registered as a consumer) on crm-events only: the seeded counts stay."""
    redis_broker.add_middleware(liveness.ConsumerRegistry())
    worker = Worker(redis_broker, queues={"crm-events"}, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


def by_queue(snap: queue_stats.QueueSnapshot) -> dict[str, tuple[int, int, int, int]]:
    return {q.queue: (q.ready, q.delayed, q.in_progress, q.dead) for q in snap.queues}


def test_queue_stats_counts_every_state(
    redis_url: str, redis_broker: RedisBroker, seeded: dict
) -> None:
    snap = queue_stats.snapshot(redis_broker.client, seeded["namespace"])
    counts = by_queue(snap)
    assert counts["invitations"] == (2, 1, 1, 0)
    assert counts["maintenance"] == (0, 0, 0, 1)
    assert counts["crm-events"] == (0, 0, 0, 0)
    # The broker beat (it enqueued and fetched), but only produced: no worker is live.
    assert redis_broker.broker_id in queue_stats.live_workers(
        redis_broker.client, seeded["namespace"]
    )
    assert snap.workers == [] and snap.consumers == []
    [letter] = queue_stats.dead_letters(redis_broker.client, "maintenance", seeded["namespace"])
    assert letter.message_id == seeded["dead_id"]
    assert letter.actor == "recover_stuck_work"


def test_only_consumers_are_live_workers(
    redis_url: str, redis_broker: RedisBroker, consumer: Worker
) -> None:
    namespace = redis_broker.namespace
    producer = RedisBroker(url=redis_url, namespace=namespace)  # another process's producer
    producer.enqueue(Message("maintenance", "recover_stuck_work", (), {}, {}))
    beating = queue_stats.live_workers(redis_broker.client, namespace)
    assert producer.broker_id in beating
    snap = queue_stats.snapshot(redis_broker.client, namespace)
    assert snap.workers == [redis_broker.broker_id]
    [registered] = snap.consumers
    assert registered.live and registered.pid == os.getpid() and registered.threads == 2
    assert registered.queues == ["crm-events"]
    assert registered.host == socket.gethostname()
    assert registered.last_heartbeat is not None
    producer.close()
    consumer.stop()  # a stopping worker takes itself off the list
    assert queue_stats.snapshot(redis_broker.client, namespace).consumers == []


def test_retry_and_discard(redis_broker: RedisBroker, seeded: dict) -> None:
    client, ns, dead_id = redis_broker.client, seeded["namespace"], seeded["dead_id"]
    assert queue_stats.retry_dead(client, "maintenance", dead_id, ns)
    assert by_queue(queue_stats.snapshot(client, ns))["maintenance"] == (1, 0, 0, 0)
    assert not queue_stats.retry_dead(client, "maintenance", dead_id, ns)
    # What a worker fetches is the same message, back on its queue with fresh retries.
    [body] = redis_broker.do_fetch("maintenance", 1)
    message = Message.decode(body)
    assert message.actor_name == "recover_stuck_work"
    assert message.queue_name == "maintenance"
    assert message.options["retries"] == 0
    redis_broker.do_nack("maintenance", dead_id)
    assert queue_stats.discard_dead(client, "maintenance", dead_id, ns)
    assert by_queue(queue_stats.snapshot(client, ns))["maintenance"] == (0, 0, 0, 0)
    assert not queue_stats.discard_dead(client, "maintenance", dead_id, ns)


@pytest.fixture
def failed_invitations(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "boss", email="boss@zylker.com")
    session.commit()
    start_and_expand(session, org, inviter, ["boss", "ghost"])
    now = utcnow()
    session.add_all(
        [
            ScheduledRun(job="expiry-sweep", started_at=now - timedelta(hours=2), result="old"),
            ScheduledRun(job="expiry-sweep", started_at=now, finished_at=now, result="enqueued 7"),
        ]
    )
    session.commit()


@pytest.fixture
def client(
    session: Session,
    redis_url: str,
    redis_broker: RedisBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        admin_token=TOKEN,
        broker_url=redis_url,
        broker_namespace=redis_broker.namespace,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def row(html: str, attribute: str, name: str) -> dict[str, str]:
    match = re.search(rf'<tr {attribute}="{re.escape(name)}">(.*?)</tr>', html, re.S)
    assert match, f"no row {name}"
    cells = re.findall(r'<td class="n ([\w-]+)[^"]*">(\d+)</td>', match.group(1))
    return dict(cells)


def test_ops_page_shows_the_numbers(
    client: TestClient, seeded: dict, failed_invitations: None, consumer: Worker
) -> None:
    assert client.get("/ops").status_code == 401
    assert client.get("/ops").headers["www-authenticate"].startswith("Basic")
    assert client.get("/ops", auth=("admin", "wrong")).status_code == 401
    page = client.get("/ops", auth=BASIC)
    assert page.status_code == 200
    html = page.text
    assert '<meta http-equiv="refresh" content="10">' in html
    assert row(html, "data-queue", "invitations") == {
        "ready": "2",
        "delayed": "1",
        "in-progress": "1",
        "dead": "0",
    }
    assert row(html, "data-queue", "maintenance")["dead"] == "1"
    assert re.search(r'id="live-workers">1<', html)
    assert f'<tr data-broker-id="{consumer.broker.broker_id}" class="live">' in html
    assert row(html, "data-flow", "invitations:email") == {"done": "0", "failed": "2"}
    assert "company_domain: 1, record_missing: 1" in html
    assert "enqueued 7" in html and ">old<" not in html
    assert seeded["dead_id"] in html
    # The bearer token works too.
    bearer = client.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_ops_buttons_retry_and_discard(
    client: TestClient, redis_broker: RedisBroker, seeded: dict
) -> None:
    html = client.get("/ops", auth=BASIC).text
    csrf = re.search(r'name="csrf" value="(\w+)"', html).group(1)
    path = f"/ops/dead/maintenance/{seeded['dead_id']}"
    # Without the form token (a cross-site post) nothing happens.
    assert client.post(f"{path}/retry", auth=BASIC, data={}).status_code == 403
    assert client.post(f"{path}/retry", data={"csrf": csrf}).status_code == 401
    answer = client.post(f"{path}/retry", auth=BASIC, data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ops"
    counts = by_queue(queue_stats.snapshot(redis_broker.client, seeded["namespace"]))
    assert counts["maintenance"] == (1, 0, 0, 0)
    assert client.post(f"{path}/discard", auth=BASIC, data={"csrf": csrf}).status_code == 404

    assert redis_broker.do_fetch("maintenance", 1)
    redis_broker.do_nack("maintenance", seeded["dead_id"])
    answer = client.post(f"{path}/discard", auth=BASIC, data={"csrf": csrf})
    assert answer.status_code == 200  # followed the redirect back to /ops
    counts = by_queue(queue_stats.snapshot(redis_broker.client, seeded["namespace"]))
    assert counts["maintenance"] == (0, 0, 0, 0)


def test_metrics_parse_as_prometheus_text(
    client: TestClient, seeded: dict, failed_invitations: None
) -> None:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    families = list(text_string_to_metric_families(answer.text))
    assert {"portalflow_invitation_outcomes", "portalflow_workers"} <= {f.name for f in families}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    ready = ("portalflow_queue_messages", (("queue", "invitations"), ("state", "ready")))
    assert samples[ready] == 2
    delayed = ("portalflow_queue_messages", (("queue", "invitations"), ("state", "delayed")))
    assert samples[delayed] == 1
    assert samples[("portalflow_dead_letters", (("queue", "maintenance"),))] == 1
    assert samples[("portalflow_invitations", (("status", "failed"),))] == 2


def test_flow_stats_and_job_runs(session: Session, failed_invitations: None) -> None:
    flows = {f.flow: f for f in ops_stats.flow_stats(session)}
    assert flows["invitations:email"].failures_by_reason == {
        "company_domain": 1,
        "record_missing": 1,
    }
    [run_] = ops_stats.last_job_runs(session)
    assert (run_.job, run_.result) == ("expiry-sweep", "enqueued 7")


def test_cli_queues_json(
    cli_env: Any,
    redis_url: str,
    redis_broker: RedisBroker,
    seeded: dict,
    consumer: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTALFLOW_BROKER_URL", redis_url)
    code, output = run("queues", "--json", "--namespace", seeded["namespace"])
    assert code == 0, output
    shown = json.loads(output)
    counts = {q["queue"]: q for q in shown["queues"]}
    assert counts["invitations"] == {
        "queue": "invitations",
        "ready": 2,
        "delayed": 1,
        "in_progress": 1,
        "dead": 0,
    }
    assert counts["maintenance"]["dead"] == 1
    assert shown["workers"] == 1
    assert shown["consumers"][0]["queues"] == ["crm-events"]
    code, output = run("queues", "--namespace", seeded["namespace"])
    assert code == 0 and "invitations" in output and "live workers" in output


def test_cli_queues_with_the_embedded_broker(cli_env: Any) -> None:
    code, output = run("queues")
    assert code == 2
    assert "nothing" in output or "no queues" in output
