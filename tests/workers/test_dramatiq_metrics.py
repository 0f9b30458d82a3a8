"""Dramatiq's own middleware metrics, written by real worker processes, on the app's /metrics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bench.harness import free_port, private_redis, worker_processes
from portalflow.config import Settings
from portalflow.web.app import create_app

from ..servers import require_binary

ACTOR = (("actor_name", "recover_stuck_work"), ("queue_name", "maintenance"))

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels), failing unless it parses."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_metrics_add_the_workers_dramatiq_metrics(
    pg_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_binary("redis-server")
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    database_url = pg_engine.url.render_as_string(hide_password=False)
    log_path = tmp_path / "worker.log"
    with private_redis() as redis_server:
        env = {
            "PORTALFLOW_BROKER_URL": redis_server.url,
            "PORTALFLOW_DATABASE_URL": database_url,
            "PORTALFLOW_VAR_DIR": str(tmp_path / "var"),
            "dramatiq_prom_db": str(metrics_dir),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_port": str(free_port()),
        }
        with worker_processes(env, processes=1, threads=1, log_path=log_path):
            producer = RedisBroker(url=redis_server.url)
            for _ in range(2):
                producer.enqueue(
                    Message(
                        queue_name="maintenance",
                        actor_name="recover_stuck_work",
                        args=(),
                        kwargs={},
                        options={},
                    )
                )
            producer.close()

            monkeypatch.delenv("PORTALFLOW_BROKER_NAMESPACE", raising=False)
            monkeypatch.setenv("dramatiq_prom_db", str(metrics_dir))
            settings = Settings(database_url=database_url, broker_url=redis_server.url)
            with TestClient(create_app(settings)) as client:
                processed = ("dramatiq_messages_total", ACTOR)
                deadline = time.monotonic() + 30
                while samples(client).get(processed, 0) < 2:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
                found = samples(client)

    assert found[processed] == 2
    assert found[("dramatiq_message_duration_milliseconds_count", ACTOR)] == 2
    assert ("dramatiq_message_errors_total", ACTOR) not in found
    ready = ("portalflow_queue_messages", (("queue", "maintenance"), ("state", "ready")))
    assert found[ready] == 0
    assert found[("portalflow_workers", ())] >= 1


def test_metrics_without_the_dramatiq_directory(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = session.get_bind().url.render_as_string(hide_password=False)
    monkeypatch.setenv("dramatiq_prom_db", str(tmp_path / "not-created"))
    with TestClient(create_app(Settings(database_url=url))) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    names = {family.name for family in text_string_to_metric_families(answer.text)}
    assert "portalflow_invitations" in names
    assert not [name for name in names if name.startswith("dramatiq_")]
