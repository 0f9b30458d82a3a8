"""`portalflow invite` with the Redis broker says when no worker consumes the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine

from portalflow.cli import waiting
from portalflow.workers import runtime

from ..cli_runner import flat, run


@pytest.fixture
def redis_cli(
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_engine: Engine,
    pg_database_url: str,
    redis_url: str,
    redis_broker: RedisBroker,
    tmp_path: Path,
) -> Iterator[RedisBroker]:
    """The CLI on PostgreSQL and the test's Redis namespace, with one org, user and record."""
    monkeypatch.setenv("PORTALFLOW_DATABASE_URL", pg_database_url)
    monkeypatch.setenv("PORTALFLOW_BROKER_URL", redis_url)
    assert (
        run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")[0] == 0
    )
    assert run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
               "--modules", "Contacts")[0] == 0  # fmt: skip
    records = tmp_path / "records.csv"
    records.write_text("crm_id,first_name,email\nA1,Ana,ana@example.org\nA2,Bo,bo@example.org\n")
    assert run("records", "import", str(records), "--org", "1", "--module", "Contacts")[0] == 0
    yield redis_broker
    runtime.configure()  # the workers of later tests read the environment again


def start_worker(broker: RedisBroker) -> Worker:
    runtime.configure()  # the worker's threads use the CLI's database and outbox
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    return worker


def test_no_worker_is_said_and_exits_3_leaving_the_run_queued(redis_cli: RedisBroker) -> None:
    started = time.monotonic()
    code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1", "-r", "A1",
                    "--wait-for-worker", "2")  # fmt: skip
    assert code == waiting.EXIT_NO_WORKER == 3, out
    assert time.monotonic() - started < 10
    text = flat(out)
    assert "no worker took bulk run 1 within 2 s: none consumes the invitations queue" in text
    assert "portalflow worker" in text and "portalflow bulk-runs show 1" in text
    code, out = run("bulk-runs", "show", "1", "--json")
    assert '"status": "running"' in out

    worker = start_worker(redis_cli)
    try:
        code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1", "-r", "A2")
        assert code == 0, out
        deadline = time.monotonic() + 30
        while '"status": "completed"' not in run("bulk-runs", "show", "1", "--json")[1]:
            assert time.monotonic() < deadline, "the queued run never went on"
            time.sleep(0.1)
    finally:
        worker.stop()


def test_a_worker_that_starts_while_it_waits_is_used(
    redis_cli: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "WORKER_NOTICE_SECONDS", 0.5)
    workers: list[Worker] = []
    late = threading.Timer(2.0, lambda: workers.append(start_worker(redis_cli)))
    late.start()
    try:
        code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1",
                        "-r", "A1", "--wait-for-worker", "60")  # fmt: skip
    finally:
        late.join()
        for worker in workers:
            worker.stop()
    assert code == 0, out
    assert "no worker consumes the invitations queue" in flat(out)
    assert "1 sent" in out


def test_another_broker_beating_counts_as_a_worker(
    redis_broker: RedisBroker, redis_url: str
) -> None:
    assert not waiting.worker_seen()  # our own heartbeat is not a worker
    redis_broker.do_qsize("invitations")
    assert not waiting.worker_seen()
    elsewhere = RedisBroker(url=redis_url, namespace=redis_broker.namespace)
    try:
        elsewhere.do_qsize("invitations")  # what a polling worker does, every second
        assert waiting.worker_seen()
    finally:
        elsewhere.close()
