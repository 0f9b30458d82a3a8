"""``GET /metrics``: the ops figures and Dramatiq's worker metrics for Prometheus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from portalflow.pipelines.ops import ops_stats, sampler
from portalflow.workers import queue_stats

from .ops import (
    broker_namespace,
    redis_client,
)

router = APIRouter(tags=["ops"])
# Where Dramatiq's Prometheus middleware keeps its multiprocess files (its own variable).
DRAMATIQ_METRICS_ENV = "dramatiq_prom_db"


class OpsCollector(Collector):
    """Fresh numbers from Redis and the database on every scrape."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def collect(self) -> Iterator[Any]:
        client = redis_client(self.request)
        if client is not None:
            snap = queue_stats.snapshot(client, broker_namespace(self.request))
            messages = GaugeMetricFamily(
                "portalflow_queue_messages",
                "Messages in a Dramatiq queue by state",
                labels=["queue", "state"],
            )
            dead = GaugeMetricFamily(
                "portalflow_dead_letters", "Dead-lettered messages", labels=["queue"]
            )
            for q in snap.queues:
                messages.add_metric([q.queue, "ready"], q.ready)
                messages.add_metric([q.queue, "delayed"], q.delayed)
                messages.add_metric([q.queue, "in_progress"], q.in_progress)
                dead.add_metric([q.queue], q.dead)
            yield messages
            yield dead
            yield GaugeMetricFamily(
                "portalflow_workers",
                "Worker processes consuming with a live heartbeat",
                value=len(snap.workers),
            )
        with self.request.app.state.session_factory() as session:
            by_status, by_outcome = ops_stats.invitation_counts(session)
            latencies = sampler.latest(session, (sampler.P50, sampler.P95))
        statuses = GaugeMetricFamily(
            "portalflow_invitations", "Invitations by status", labels=["status"]
        )
        for status, count in sorted(by_status.items()):
            statuses.add_metric([status], count)
        yield statuses
        outcomes = GaugeMetricFamily(
            "portalflow_invitation_outcomes",
            "Invitations by provider outcome class",
            labels=["outcome_class"],
        )
        for outcome, count in sorted(by_outcome.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        latency = GaugeMetricFamily(
            "portalflow_provider_latency_milliseconds",
            "Provider call latency over the last sampled minute (the ops sampler's)",
            labels=["channel", "quantile"],
        )
        for (series, channel), value in sorted(latencies.items()):
            latency.add_metric([channel, "0.5" if series == sampler.P50 else "0.95"], value)
        yield latency


def dramatiq_metrics_dir() -> Path | None:
    """The workers' multiprocess metrics directory, when configured and present."""
    configured = os.environ.get(DRAMATIQ_METRICS_ENV)
    if configured and Path(configured).is_dir():
        return Path(configured)
    return None


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}
    },
)
def metrics(request: Request) -> Response:
    """Prometheus text exposition; no credential (see the module docstring)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(request))
    directory = dramatiq_metrics_dir()
    if directory is not None:
        MultiProcessCollector(registry, path=str(directory))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
