"""Admin reads over HTTP: the failure report, the same pipeline as `portalflow failures`."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portalflow.events import Id
from portalflow.models import ProblemCode
from portalflow.pipelines.ops import failure_reports

from .admin import FailureOptions, failure_report
from .problems import ApiProblem

router = APIRouter(tags=["admin"])
admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="PORTALFLOW_ADMIN_TOKEN."
)


def check_admin_token(request: Request, token: str) -> None:
    """``token`` equals PORTALFLOW_ADMIN_TOKEN (constant time), else 401; 503 when unset."""
    expected = request.app.state.settings.admin_token
    if not expected:
        raise ApiProblem(503, "the admin API is off: set PORTALFLOW_ADMIN_TOKEN")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiProblem(
            401,
            "a valid admin bearer token is required",
            ProblemCode.UNAUTHORIZED,
            {"WWW-Authenticate": "Bearer"},
        )


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    """A bearer token equal to PORTALFLOW_ADMIN_TOKEN, compared in constant time."""
    check_admin_token(request, credentials.credentials if credentials is not None else "")


@router.get("/orgs/{org_id}/failures", dependencies=[Depends(require_admin)])
def org_failures(
    request: Request,
    org_id: Id,
    options: FailureOptions,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Who failed and why, now: counts by reason, outcome and user type, and the invitees.

    Failures resolved since (invited again, or the user is now confirmed) are only counted
    in ``resolved`` unless ``include_resolved``.
    """
    return failure_report(request, failure_reports.FailureFilter(org_id=org_id, **options), limit)
