"""The admin API of the org's CRM webhooks: endpoints, their secrets, their deliveries.

Behind the org's API key like the rest of ``/admin``: another org's endpoint or delivery
is answered 404. The secret is in the answer of ``POST /admin/webhooks`` and of
``rotate-secret`` only. Handlers parse, call one pipeline function, commit and answer.

Tests may set ``app.state.enqueue_webhook_deliveries`` (a callable taking a list of
delivery ids); by default ``deliver_webhooks`` messages are sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from portalflow.models import WebhookDeliveryStatus, WebhookEventType
from portalflow.pipelines.crm_webhooks import delivery, endpoints
from portalflow.pipelines.errors import PortalflowError
from portalflow.workers import enqueue, submit

from .events import OrgId, problem

router = APIRouter(prefix="/admin", tags=["admin webhooks"])

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointRequest(_Body):
    url: str = Field(
        max_length=2048, description="Where to POST: http(s), resolving to a public address."
    )
    event_types: list[WebhookEventType] = Field(
        default_factory=list, max_length=50, description="The types wanted; empty: every type."
    )
    description: str | None = Field(None, max_length=endpoints.MAX_DESCRIPTION)


class EndpointChange(_Body):
    url: str | None = Field(None, max_length=2048)
    event_types: list[WebhookEventType] | None = Field(
        None, max_length=50, description="The types wanted from now on; empty: every type."
    )
    description: str | None = Field(None, max_length=endpoints.MAX_DESCRIPTION)
    enabled: bool | None = Field(
        None, description="Disabled: nothing is sent and pending deliveries wait."
    )


class RotateRequest(_Body):
    overlap_hours: float = Field(
        endpoints.DEFAULT_OVERLAP.total_seconds() / 3600,
        ge=0,
        le=endpoints.MAX_OVERLAP.days * 24,
        description="How long the current secret keeps signing too.",
    )


class RedeliverRequest(_Body):
    delivery_ids: list[Id] = Field(min_length=1, max_length=1000)


class DeliveryCounts(BaseModel):
    pending: int
    sending: int
    delivered: int
    dead: int


class EndpointAnswer(BaseModel):
    id: int
    url: str
    description: str | None
    event_types: list[str] = Field(description='The types wanted; ["*"]: every type.')
    enabled: bool
    previous_secret_valid_until: datetime | None
    created_at: datetime
    deliveries: DeliveryCounts


class EndpointWithSecret(EndpointAnswer):
    secret: str = Field(description="The signing secret: shown in this answer only.")


class DeliveryAnswer(BaseModel):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_failure_code: str | None
    last_status_code: int | None
    last_detail: str | None
    created_at: datetime
    delivered_at: datetime | None


class RedeliverAnswer(BaseModel):
    queued: list[int]


def _types(values: list[WebhookEventType] | None) -> list[str] | None:
    return None if values is None else [value.value for value in values]


@router.post("/webhooks", status_code=201, response_model=EndpointWithSecret)
def create_endpoint(request: Request, org_id: OrgId, body: EndpointRequest) -> Any:
    """Register an endpoint; the answer carries its signing secret, once."""
    settings = request.app.state.settings
    with request.app.state.session_factory() as session:
        try:
            created = endpoints.create_endpoint(
                session, settings, org_id, body.url, _types(body.event_types),
                body.description,
            )  # fmt: skip
        except PortalflowError as exc:
            raise problem(exc) from None
        session.commit()
        return {**endpoints.describe(session, created.endpoint), "secret": created.secret}


@router.get("/webhooks", response_model=list[EndpointAnswer])
def list_endpoints(request: Request, org_id: OrgId) -> Any:
    """The org's endpoints with their deliveries per status (never a secret)."""
    with request.app.state.session_factory() as session:
        found = endpoints.list_endpoints(session, org_id)
        return [endpoints.describe(session, endpoint) for endpoint in found]


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointAnswer)
def update_endpoint(request: Request, org_id: OrgId, endpoint_id: Id, body: EndpointChange) -> Any:
    """Change what the body gives: URL, event types, note, enabled."""
    settings = request.app.state.settings
    with request.app.state.session_factory() as session:
        try:
            endpoint = endpoints.update_endpoint(
                session,
                settings,
                org_id,
                endpoint_id,
                url=body.url,
                types=_types(body.event_types),
                description=body.description,
                enabled=body.enabled,
            )
        except PortalflowError as exc:
            raise problem(exc) from None
        session.commit()
        return endpoints.describe(session, endpoint)


@router.post("/webhooks/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
def rotate_secret(request: Request, org_id: OrgId, endpoint_id: Id, body: RotateRequest) -> Any:
    """A new secret, in this answer only; the current one signs too for the overlap."""
    settings = request.app.state.settings
    with request.app.state.session_factory() as session:
        try:
            created = endpoints.rotate_secret(
                session, settings, org_id, endpoint_id, timedelta(hours=body.overlap_hours)
            )
        except PortalflowError as exc:
            raise problem(exc) from None
        session.commit()
        return {**endpoints.describe(session, created.endpoint), "secret": created.secret}


@router.delete("/webhooks/{endpoint_id}", status_code=204)
def delete_endpoint(request: Request, org_id: OrgId, endpoint_id: Id) -> Response:
    """Delete an endpoint and its deliveries."""
    with request.app.state.session_factory() as session:
        try:
            endpoints.delete_endpoint(session, org_id, endpoint_id)
        except PortalflowError as exc:
            raise problem(exc) from None
        session.commit()
    return Response(status_code=204)


@router.get("/webhook-deliveries", response_model=list[DeliveryAnswer])
def list_deliveries(
    request: Request,
    org_id: OrgId,
    status: WebhookDeliveryStatus | None = None,
    endpoint_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    """The org's deliveries, newest first; ``status=dead`` lists what gave up."""
    with request.app.state.session_factory() as session:
        try:
            rows = delivery.list_deliveries(
                session, org_id, status=status, endpoint_id=endpoint_id, limit=limit
            )
        except PortalflowError as exc:
            raise problem(exc) from None
        return [delivery.describe(row) for row in rows]


@router.post("/webhook-deliveries/redeliver", response_model=RedeliverAnswer)
def redeliver(request: Request, org_id: OrgId, body: RedeliverRequest) -> Any:
    """Send dead deliveries again with fresh attempts (their event ids unchanged)."""
    request_ = submit.redeliver_webhooks(org_id, body.delivery_ids, send=_enqueuer(request))
    with request.app.state.session_factory() as session:
        try:
            ids = submit.submit(session, request_)
        except PortalflowError as exc:
            raise problem(exc) from None
    return RedeliverAnswer(queued=ids)


def _enqueuer(request: Request) -> Any:
    return (
        getattr(request.app.state, "enqueue_webhook_deliveries", None)
        or enqueue.enqueue_webhook_deliveries
    )
