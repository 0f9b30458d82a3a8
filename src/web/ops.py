"""The ops page (``GET /ops``) and Prometheus metrics (``GET /metrics``).

``/ops`` is a server-rendered page (``templates/ops/``) that reloads itself every 10 seconds
and polls ``/ops/runs.json`` every 2 for the running bulk runs' progress bars. It shows the
live workers (consumers only: host, pid, queues, threads, last heartbeat), per queue the
ready, delayed, in-progress and dead-lettered messages (Dramatiq's Redis keys), the running
bulk runs with rate and ETA and the recent ones (each linking to ``/ops/runs/{id}``, its
failure report), charts of the last hour or 24 hours (``?range=24h``) drawn as inline SVG
from the ops sampler's per-minute samples, the dead letters with their error and traceback
(``?actor=`` filters them; retry or discard one, or all of a queue after a confirmation),
per flow the throughput and failures by reason over the last hour, and the last run of each
scheduled job. It needs the admin credential: HTTP Basic with any user name and
PORTALFLOW_ADMIN_TOKEN as the password (what a browser asks for), or ``Authorization:
Bearer <token>``. The buttons POST a form carrying a token derived from the admin token, so
another site cannot make a logged-in browser press them.

``/metrics`` needs **no** credential, like most Prometheus endpoints: keep it on the
internal network (or behind the proxy's own auth). It carries counts only, recomputed on
each scrape: ``portalflow_queue_messages{queue,state}``, ``portalflow_dead_letters{queue}``,
``portalflow_workers`` (live consumers), ``portalflow_invitations{status}``,
``portalflow_invitation_outcomes{outcome_class}`` and
``portalflow_provider_latency_milliseconds{channel,quantile}`` (the last sampled minute).
Dramatiq's own middleware metrics (``dramatiq_messages_total``, ``dramatiq_message_errors_total``,
``dramatiq_message_duration_milliseconds``, ... per queue and actor) are added, summed over
every worker process, when ``dramatiq_prom_db`` names an existing directory: the one the
workers (started with the same variable) write their prometheus_client multiprocess files to.

The Redis namespace is ``PORTALFLOW_BROKER_NAMESPACE`` (default ``dramatiq``), the one the
broker of every worker and producer uses.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode

import redis
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials
from jinja2 import Environment, PackageLoader, select_autoescape

from portalflow.events import Id
from portalflow.models import ProblemCode, describe_failure
from portalflow.pipelines.crm_webhooks import delivery as webhook_delivery
from portalflow.pipelines.errors import NotFound
from portalflow.pipelines.ops import charts, ops_stats, reports
from portalflow.workers import queue_stats

from .problems import ApiProblem
from .reports import admin_bearer, check_admin_token

router = APIRouter(tags=["ops"])
ops_basic = HTTPBasic(
    auto_error=False,
    scheme_name="OpsBasic",
    realm="portalflow ops",
    description="Any user name; the password is PORTALFLOW_ADMIN_TOKEN.",
)

# Dramatiq's variable: where its Prometheus middleware writes (see workers/broker.py).
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
RUN_REPORT_ROWS = 1000  # failed invitees listed on a run's page


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
    """PORTALFLOW_BROKER_NAMESPACE, the one the workers and producers use too."""
    state = request.app.state
    return getattr(state, "broker_namespace", None) or state.settings.broker_namespace


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


_templates = Environment(
    loader=PackageLoader("portalflow", "templates"), autoescape=select_autoescape(default=True)
)


_OPS_JS = files("portalflow.templates").joinpath("ops", "ops.js").read_text(encoding="utf-8")


def _stamp(moment: datetime | None) -> str:
    """The page's one timestamp format: ``2026-12-01 14:03:05 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _ago(moment: datetime | None, now: datetime) -> str:
    """``moment`` relative to ``now``: ``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``."""
    if moment is None:
        return ""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            break
    else:
        amount = f"{int(seconds)} s"
    return f"in {amount}" if future else f"{amount} ago"


def _duration(seconds: float | None) -> str:
    """A duration for people: ``45 s``, ``3 min 05 s``, ``2 h 10 min``."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


_templates.filters["stamp"] = _stamp
_templates.filters["duration"] = _duration
_templates.filters["iso"] = lambda moment: moment.isoformat() if moment else ""


def _render(request: Request, name: str, **context: Any) -> HTMLResponse:
    now = ops_stats.utcnow()
    html = _templates.get_template(f"ops/{name}").render(
        now=now,
        ago=lambda moment: _ago(moment, now),
        base=request.scope.get("root_path", ""),
        **context,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _dead_letters(
    client: redis.Redis, snapshot: queue_stats.QueueSnapshot, namespace: str, actor: str | None
) -> tuple[list[queue_stats.DeadLetter], list[str]]:
    """The newest dead letters of each queue (of ``actor``), and every actor among them."""
    letters, actors = [], set()
    for q in snapshot.queues:
        if not q.dead:
            continue
        actors |= queue_stats.dead_actors(client, q.queue, namespace)
        letters += queue_stats.dead_letters(client, q.queue, namespace, actor=actor)
    return letters, sorted(actors)


@router.get("/ops", response_class=HTMLResponse, dependencies=[Depends(require_ops_admin)])
def ops_page(
    request: Request,
    actor: Annotated[
        str | None, Query(max_length=200, description="Dead letters of it only.")
    ] = None,
    span: Annotated[
        Literal["1h", "24h"], Query(alias="range", description="The charts' window.")
    ] = "1h",
) -> HTMLResponse:
    """The ops dashboard (HTML, refreshes itself every 10 seconds; runs' progress every 2)."""
    client = redis_client(request)
    namespace = broker_namespace(request)
    queues = None
    dead: list[queue_stats.DeadLetter] = []
    actors: list[str] = []
    actor = actor or None
    if client is not None:
        queues = queue_stats.snapshot(client, namespace)
        dead, actors = _dead_letters(client, queues, namespace, actor)
    now = ops_stats.utcnow()
    with request.app.state.session_factory() as session:
        flows = ops_stats.flow_stats(session)
        jobs = ops_stats.last_job_runs(session)
        running = ops_stats.running_runs(session, now)
        recent = ops_stats.recent_runs(session, now=now)
        graphs = charts.ops_charts(session, span, now)
        webhooks_dead = webhook_delivery.dead_counts(session)
    return _render(
        request,
        "page.html",
        queues=queues,
        dead=dead,
        actors=actors,
        actor=actor,
        broker_kind=(request.app.state.settings.broker_url.partition(":")[0] or "embedded"),
        flows=flows,
        jobs=jobs,
        running=running,
        recent=recent,
        charts=graphs,
        span=span,
        webhooks_dead=webhooks_dead,
        csrf=_csrf_token(request),
    )


@router.get("/ops/ops.js", include_in_schema=False)
def ops_script() -> Response:
    """The page's small script (live progress bars), served here: nothing from a CDN."""
    return Response(_OPS_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})


@router.get("/ops/runs.json", dependencies=[Depends(require_ops_admin)])
def ops_running_runs(request: Request) -> dict[str, Any]:
    """The running bulk runs' progress, what the page's progress bars poll every 2 s."""
    with request.app.state.session_factory() as session:
        running = ops_stats.running_runs(session)
    return {
        "running": [
            {
                "id": run.id,
                "requested": run.requested,
                "sent": run.sent,
                "failed": run.failed,
                "queued": run.queued,
                "percent": {
                    "sent": run.percent(run.sent),
                    "failed": run.percent(run.failed),
                    "queued": run.percent(run.queued),
                },
                "per_minute": run.per_minute,
                "eta": _duration(run.eta_seconds),
            }
            for run in running
        ]
    }


@router.get(
    "/ops/runs/{run_id}", response_class=HTMLResponse, dependencies=[Depends(require_ops_admin)]
)
def ops_run_report(request: Request, run_id: Id) -> HTMLResponse:
    """One bulk run's failure report as a page: totals, failures by reason, who failed."""
    with request.app.state.session_factory() as session:
        try:
            report = reports.bulk_run_report(session, run_id, limit=RUN_REPORT_ROWS)
        except NotFound as exc:
            raise ApiProblem(404, str(exc), ProblemCode.NOT_FOUND) from None
    meanings = {code: describe_failure(code) for code in report["failed_by_reason"]}
    created = datetime.fromisoformat(report["created_at"])
    finished = report["finished_at"] and datetime.fromisoformat(report["finished_at"])
    return _render(
        request,
        "run.html",
        run=report,
        meanings=meanings,
        created=created,
        finished=finished or None,
        shown=RUN_REPORT_ROWS,
    )


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields, after checking its token (a bearer caller needs none)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("csrf") or [""])[0]
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if not bearer and not hmac.compare_digest(given.encode(), _csrf_token(request).encode()):
        raise ApiProblem(403, "the form token is missing or wrong; reload /ops")
    return {name: values[0] for name, values in form.items()}


def _back(request: Request, actor: str | None = None) -> Response:
    query = f"?{urlencode({'actor': actor})}" if actor else ""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ops{query}", status_code=303)


def _dead_action(request: Request, queue: str, message_id: str, action: str) -> Response:
    client = redis_client(request)
    if client is None:
        raise ApiProblem(404, "the broker is not Redis: there are no dead letters here")
    do = queue_stats.retry_dead if action == "retry" else queue_stats.discard_dead
    if not do(client, queue, message_id, broker_namespace(request)):
        raise ApiProblem(404, f"no dead-lettered message {message_id} on {queue}")
    return _back(request)


@router.post("/ops/dead/{queue}/{message_id}/retry", dependencies=[Depends(require_ops_admin)])
async def retry_dead(request: Request, queue: str, message_id: str) -> Response:
    """Put a dead-lettered message back on its queue; redirects to /ops."""
    await _form(request)
    return _dead_action(request, queue, message_id, "retry")


@router.post("/ops/dead/{queue}/{message_id}/discard", dependencies=[Depends(require_ops_admin)])
async def discard_dead(request: Request, queue: str, message_id: str) -> Response:
    """Delete a dead-lettered message; redirects to /ops."""
    await _form(request)
    return _dead_action(request, queue, message_id, "discard")


async def _all_dead(request: Request, queue: str, action: str) -> Response:
    form = await _form(request)
    if form.get("confirm") != "yes":
        raise ApiProblem(
            422,
            f"{action} all dead letters of {queue}: confirm it (the form field confirm=yes)",
            ProblemCode.INVALID_INPUT,
        )
    client = redis_client(request)
    if client is None:
        raise ApiProblem(404, "the broker is not Redis: there are no dead letters here")
    actor = form.get("actor") or None
    do = queue_stats.retry_all_dead if action == "retry" else queue_stats.discard_all_dead
    do(client, queue, broker_namespace(request), actor)
    return _back(request, actor)


@router.post("/ops/dead/{queue}/retry-all", dependencies=[Depends(require_ops_admin)])
async def retry_all_dead(request: Request, queue: str) -> Response:
    """Put every dead letter of a queue (of ``actor``, if posted) back; needs confirm=yes."""
    return await _all_dead(request, queue, "retry")


@router.post("/ops/dead/{queue}/discard-all", dependencies=[Depends(require_ops_admin)])
async def discard_all_dead(request: Request, queue: str) -> Response:
    """Delete every dead letter of a queue (of ``actor``, if posted); needs confirm=yes."""
    return await _all_dead(request, queue, "discard")
