"""Admin reads over HTTP: the failure report, the same pipeline as `portalflow failures`."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request

from portalflow.pipelines import failure_reports

from .admin import FailureOptions, failure_report

router = APIRouter(tags=["admin"])


def require_admin(request: Request, authorization: Annotated[str, Header()] = "") -> None:
    """A bearer token equal to PORTALFLOW_ADMIN_TOKEN, compared in constant time."""
    expected = request.app.state.settings.admin_token
    if not expected:
        raise HTTPException(503, "the admin API is off: set PORTALFLOW_ADMIN_TOKEN")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(401, "a valid admin bearer token is required")


@router.get("/orgs/{org_id}/failures", dependencies=[Depends(require_admin)])
def failures(
    request: Request,
    org_id: int,
    options: FailureOptions,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Who failed and why, now: counts by reason, outcome and user type, and the invitees.

    Failures resolved since (invited again, or the user is now confirmed) are only counted
    in ``resolved`` unless ``include_resolved``.
    """
    return failure_report(request, failure_reports.FailureFilter(org_id=org_id, **options), limit)
