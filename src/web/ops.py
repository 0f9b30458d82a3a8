"""The ops page (``GET /ops``) and Prometheus metrics (``GET /metrics``).

``/ops`` is a server-rendered page that reloads itself every 10 seconds: per queue the
ready, delayed, in-progress and dead-lettered messages and the live workers (read from
Dramatiq's Redis keys), per flow the throughput and failures by reason over the last hour,
the last run of each scheduled job, and a retry / discard button per dead-lettered message.
It needs the admin credential: HTTP Basic with any user name and PORTALFLOW_ADMIN_TOKEN as
the password (what a browser asks for), or ``Authorization: Bearer <token>``. The buttons
POST a form carrying a token derived from the admin token, so another site cannot make a
logged-in browser press them.

``/metrics`` needs **no** credential, like most Prometheus endpoints: keep it on the
internal network (or behind the proxy's own auth). It carries counts only, recomputed on
each scrape: ``portalflow_queue_messages{queue,state}``, ``portalflow_dead_letters{queue}``,
``portalflow_workers``, ``portalflow_invitations{status}`` and
``portalflow_invitation_outcomes{outcome_class}``. Dramatiq's own middleware metrics
(``dramatiq_messages_total``, ``dramatiq_message_errors_total``,
``dramatiq_message_duration_milliseconds``, ... per queue and actor) are added, summed over
every worker process, when ``dramatiq_prom_db`` names an existing directory: the one the
workers (started with the same variable) write their prometheus_client multiprocess files to.

The Redis namespace is ``PORTALFLOW_BROKER_NAMESPACE`` (default ``dramatiq``, Dramatiq's).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import redis
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials
from jinja2 import Environment, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from portalflow.pipelines import ops_stats, queue_stats
from portalflow.pipelines.crm_webhooks import delivery as webhook_delivery

from .problems import ApiProblem, ProblemCode
from .reports import admin_bearer, check_admin_token

router = APIRouter(tags=["ops"])
ops_basic = HTTPBasic(
    auto_error=False,
    scheme_name="OpsBasic",
    realm="portalflow ops",
    description="Any user name; the password is PORTALFLOW_ADMIN_TOKEN.",
)

NAMESPACE_ENV = "PORTALFLOW_BROKER_NAMESPACE"
# Dramatiq's variable: where its Prometheus middleware writes (see workers/broker.py).
DRAMATIQ_METRICS_ENV = "dramatiq_prom_db"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def require_ops_admin(
    request: Request,
    basic: Annotated[HTTPBasicCredentials | None, Depends(ops_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    """HTTP Basic (password = the admin token) or the admin bearer token."""
    expected = request.app.state.settings.admin_token
    if not expected:
        raise ApiProblem(503, "the ops page is off: set PORTALFLOW_ADMIN_TOKEN")
    if bearer is not None:
        check_admin_token(request, bearer.credentials)
        return
    if basic is not None and hmac.compare_digest(basic.password.encode(), expected.encode()):
        return
    raise ApiProblem(
        401,
        "the admin credential is required",
        ProblemCode.UNAUTHORIZED,
        headers={"WWW-Authenticate": 'Basic realm="portalflow ops", charset="UTF-8"'},
    )


def broker_namespace(request: Request) -> str:
    return getattr(request.app.state, "broker_namespace", None) or os.environ.get(
        NAMESPACE_ENV, queue_stats.DEFAULT_NAMESPACE
    )


def redis_client(request: Request) -> redis.Redis | None:
    """The broker's Redis (created once per app), or None for a non-Redis broker."""
    state = request.app.state
    client = getattr(state, "ops_redis", None)
    if client is None:
        url = state.settings.broker_url
        if not url.startswith(REDIS_SCHEMES):
            return None
        client = state.ops_redis = queue_stats.client_from_url(url)
    return client


def _csrf_token(request: Request) -> str:
    secret = request.app.state.settings.admin_token.encode()
    return hmac.new(secret, b"portalflow-ops-form", hashlib.sha256).hexdigest()


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<title>portalflow ops</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00020; font-weight: bold; }
form { display: inline; }
.note { color: #666; }
</style>
</head>
<body>
<h1>portalflow ops</h1>
<p class="note">Refreshes every 10 seconds. Generated {{ now }}.</p>

<h2>Queues</h2>
{% if queues is none %}
<p>The broker is not Redis ({{ broker_kind }}): there are no queues to inspect here.</p>
{% else %}
<p>Namespace <code>{{ queues.namespace }}</code>,
live workers: <strong id="live-workers">{{ queues.workers|length }}</strong></p>
<table id="queues">
<thead><tr><th>queue</th><th>ready</th><th>delayed</th><th>in progress</th><th>dead</th></tr>
</thead>
<tbody>
{% for q in queues.queues %}
<tr data-queue="{{ q.queue }}">
<td>{{ q.queue }}</td><td class="n ready">{{ q.ready }}</td>
<td class="n delayed">{{ q.delayed }}</td><td class="n in-progress">{{ q.in_progress }}</td>
<td class="n dead{% if q.dead %} bad{% endif %}">{{ q.dead }}</td>
</tr>
{% endfor %}
</tbody>
</table>

<h2>Dead-lettered messages</h2>
{% if dead %}
<table id="dead-letters">
<thead><tr><th>queue</th><th>actor</th><th>arguments</th><th>retries</th><th>dead since</th>
<th>message</th><th></th></tr></thead>
<tbody>
{% for d in dead %}
<tr data-message-id="{{ d.message_id }}">
<td>{{ d.queue }}</td><td>{{ d.actor }}</td><td><code>{{ d.args }}</code></td>
<td class="n">{{ d.retries }}</td><td>{{ d.dead_at.strftime("%Y-%m-%d %H:%M:%S") }} UTC</td>
<td><code>{{ d.message_id }}</code></td>
{% set target = base ~ "/ops/dead/" ~ d.queue|urlencode ~ "/" ~ d.message_id|urlencode %}
<td>
<form method="post" action="{{ target }}/retry">
<input type="hidden" name="csrf" value="{{ csrf }}"><button type="submit">retry</button></form>
<form method="post" action="{{ target }}/discard">
<input type="hidden" name="csrf" value="{{ csrf }}"><button type="submit">discard</button></form>
</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>None.</p>
{% endif %}
{% endif %}

<h2>Flows, last hour</h2>
<table id="flows">
<thead><tr><th>flow</th><th>done</th><th>failed</th><th>failures by reason</th></tr></thead>
<tbody>
{% for f in flows %}
<tr data-flow="{{ f.flow }}">
<td>{{ f.flow }}</td><td class="n done">{{ f.done }}</td>
<td class="n failed{% if f.failed %} bad{% endif %}">{{ f.failed }}</td>
<td>{{ f.failures_by_reason|dictsort|map("join", ": ")|join(", ") }}</td>
</tr>
{% endfor %}
</tbody>
</table>

<h2>CRM webhooks that gave up</h2>
{% if webhooks_dead %}
<table id="webhooks-dead">
<thead><tr><th>org</th><th>dead deliveries</th></tr></thead>
<tbody>
{% for org_id, count in webhooks_dead|dictsort %}
<tr data-org="{{ org_id }}"><td>{{ org_id }}</td><td class="n bad">{{ count }}</td></tr>
{% endfor %}
</tbody>
</table>
<p class="note">See them with <code>portalflow webhooks deliveries --org ID --status dead</code>;
<code>portalflow webhooks redeliver</code> sends them again.</p>
{% else %}
<p>None.</p>
{% endif %}

<h2>Scheduled jobs</h2>
{% if jobs %}
<table id="jobs">
<thead><tr><th>job</th><th>last started</th><th>finished</th><th>result</th></tr></thead>
<tbody>
{% for j in jobs %}
<tr data-job="{{ j.job }}">
<td>{{ j.job }}</td><td>{{ j.started_at }}</td><td>{{ j.finished_at or "running" }}</td>
<td>{{ j.result or "" }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No scheduled job has run yet.</p>
{% endif %}
</body>
</html>
"""

_templates = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_page = _templates.from_string(PAGE)


@router.get("/ops", response_class=HTMLResponse, dependencies=[Depends(require_ops_admin)])
def ops_page(request: Request) -> HTMLResponse:
    """The ops dashboard (HTML, refreshes itself every 10 seconds)."""
    client = redis_client(request)
    namespace = broker_namespace(request)
    queues = dead = None
    if client is not None:
        queues = queue_stats.snapshot(client, namespace)
        dead = [
            letter
            for q in queues.queues
            if q.dead
            for letter in queue_stats.dead_letters(client, q.queue, namespace)
        ]
    with request.app.state.session_factory() as session:
        flows = ops_stats.flow_stats(session)
        jobs = ops_stats.last_job_runs(session)
        webhooks_dead = webhook_delivery.dead_counts(session)
    html = _page.render(
        now=ops_stats.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC"),
        queues=queues,
        dead=dead,
        broker_kind=(request.app.state.settings.broker_url.partition(":")[0] or "embedded"),
        flows=flows,
        jobs=jobs,
        webhooks_dead=webhooks_dead,
        csrf=_csrf_token(request),
        base=request.scope.get("root_path", ""),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def _check_form(request: Request) -> None:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("csrf") or [""])[0]
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if not bearer and not hmac.compare_digest(given.encode(), _csrf_token(request).encode()):
        raise ApiProblem(403, "the form token is missing or wrong; reload /ops")


def _dead_action(request: Request, queue: str, message_id: str, action: str) -> Response:
    client = redis_client(request)
    if client is None:
        raise ApiProblem(404, "the broker is not Redis: there are no dead letters here")
    do = queue_stats.retry_dead if action == "retry" else queue_stats.discard_dead
    if not do(client, queue, message_id, broker_namespace(request)):
        raise ApiProblem(404, f"no dead-lettered message {message_id} on {queue}")
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ops", status_code=303)


@router.post("/ops/dead/{queue}/{message_id}/retry", dependencies=[Depends(require_ops_admin)])
async def retry_dead(request: Request, queue: str, message_id: str) -> Response:
    """Put a dead-lettered message back on its queue; redirects to /ops."""
    await _check_form(request)
    return _dead_action(request, queue, message_id, "retry")


@router.post("/ops/dead/{queue}/{message_id}/discard", dependencies=[Depends(require_ops_admin)])
async def discard_dead(request: Request, queue: str, message_id: str) -> Response:
    """Delete a dead-lettered message; redirects to /ops."""
    await _check_form(request)
    return _dead_action(request, queue, message_id, "discard")


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
                "portalflow_workers", "Brokers with a live heartbeat", value=len(snap.workers)
            )
        with self.request.app.state.session_factory() as session:
            by_status, by_outcome = ops_stats.invitation_counts(session)
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
