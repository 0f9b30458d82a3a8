"""CRM event intake: ``POST /events`` with a per-org API key.

The body is validated against the schema of its ``type`` (a bad one is answered 422 naming
the field and nothing is stored); the event is stored once per (org, CRM event id),
committed, and only then enqueued to ``handle_crm_event``. A repeat of an event id with the
same type and data is answered 200 with the first event's status and is not enqueued
again; the same id with other content is refused 409 (``event_id_reused``). The org is the
key's, never the body's. Errors are problem+json (:mod:`.problems`).

Every event names its record ``record_id`` (``record_ids`` for a list); the deprecated
``crm_id`` / ``crm_ids`` are accepted for one release (see :mod:`portalflow.events`).

Tests (or an embedding app) may set ``app.state.enqueue_crm_event`` to a callable taking
the event row id; by default the Dramatiq actor is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from portalflow.events import Event
from portalflow.models import ProblemCode
from portalflow.pipelines.errors import PortalflowError
from portalflow.pipelines.tenancy import api_keys
from portalflow.workers import submit
from portalflow.workers.address_actors import handle_crm_event

from .problems import ApiProblem, from_pipeline_error

router = APIRouter(tags=["events"])
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OrgApiKey",
    description="A per-org API key: `pf_<prefix>_<secret>`.",
)


def require_org(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> int:
    """The org id of the presented API key; 401 for a missing, unknown or revoked key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem(
            401, "an API key is required", ProblemCode.UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}
        )
    with request.app.state.session_factory() as session:
        org_id = api_keys.authenticate(session, credentials.credentials)
    if org_id is None:
        raise ApiProblem(
            401,
            "the API key is unknown or revoked",
            ProblemCode.UNAUTHORIZED,
            {"WWW-Authenticate": "Bearer"},
        )
    return org_id


OrgId = Annotated[int, Depends(require_org)]


def problem(exc: PortalflowError) -> ApiProblem:
    """A pipeline's refusal as an HTTP error: 404 NotFound, 409 a reused id, 422 the rest."""
    return from_pipeline_error(exc)


# --- the event schemas -------------------------------------------------------------------


class EventAnswer(BaseModel):
    event_id: int = Field(description="portalflow's id of the stored event.")
    status: str = Field(description="received, processed or failed.")
    result_code: str | None = None
    detail: str | None = None


# --- the route ---------------------------------------------------------------------------


def _enqueuer(request: Request) -> Callable[[int], Any]:
    return getattr(request.app.state, "enqueue_crm_event", None) or handle_crm_event.send


@router.post(
    "/events",
    status_code=202,
    response_model=EventAnswer,
    responses={
        200: {"model": EventAnswer, "description": "A repeat of a known event id."},
        409: {"description": "The event id was used before for another type or data."},
    },
)
def receive_event(
    request: Request, response: Response, org_id: OrgId, event: Annotated[Event, Body()]
) -> EventAnswer:
    """Store one CRM event, commit, then queue it; a repeat is 200, a reused id 409."""
    payload = event.data.model_dump(mode="json", exclude_unset=True)
    stored = submit.crm_event(org_id, event.type, event.id, payload, send=_enqueuer(request))
    with request.app.state.session_factory() as session:
        try:
            recorded = submit.submit(session, stored)
        except PortalflowError as exc:
            raise problem(exc) from None
    if not recorded.created:
        response.status_code = 200
    return EventAnswer(
        event_id=recorded.event_id,
        status=recorded.status.value,
        result_code=recorded.result_code,
        detail=recorded.detail,
    )
