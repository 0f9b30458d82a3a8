"""Every error of the JSON API as RFC 9457 problem details, with a stable ``code``.

``install`` registers one handler per kind of error: HTTPException (ours carry a code, see
:class:`ApiProblem`), request validation (422 naming each field, never echoing the input),
the pipelines' refusals (:mod:`portalflow.pipelines.errors`) and anything unexpected (500,
logged here, no internals in the answer). The recipient's HTML pages answer their own
errors with pages and never reach these handlers for them.

    {"type": "urn:portalflow:problem:not_found", "title": "Not found", "status": 404,
     "detail": "bulk run 7 does not exist", "code": "not_found"}
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from portalflow.models import ProblemCode
from portalflow.pipelines.errors import NotFound, PortalflowError
from portalflow.pipelines.tenancy.idempotency import IdempotencyConflict

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:portalflow:problem:"


TITLES = {
    ProblemCode.BAD_REQUEST: "Bad request",
    ProblemCode.UNAUTHORIZED: "Authentication required",
    ProblemCode.FORBIDDEN: "Forbidden",
    ProblemCode.NOT_FOUND: "Not found",
    ProblemCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ProblemCode.CONFLICT: "Conflict",
    ProblemCode.INVALID_TRANSITION: "Not allowed in the user's current status",
    ProblemCode.INVALID_TOKEN: "The link's token cannot be used",
    ProblemCode.SIGN_IN_REFUSED: "Sign-in refused",
    ProblemCode.IDEMPOTENCY_KEY_REUSED: "Idempotency key reused for another request",
    ProblemCode.EVENT_ID_REUSED: "Event id reused for another event",
    ProblemCode.PAYLOAD_TOO_LARGE: "Request body too large",
    ProblemCode.INVALID_REQUEST: "Invalid request",
    ProblemCode.INVALID_INPUT: "Invalid input",
    ProblemCode.RATE_LIMITED: "Too many requests",
    ProblemCode.UPSTREAM_FAILED: "A service we called failed",
    ProblemCode.UNAVAILABLE: "Service unavailable",
    ProblemCode.INTERNAL_ERROR: "Internal server error",
}

# The code of an HTTPException that names none.
STATUS_CODES = {
    400: ProblemCode.BAD_REQUEST,
    401: ProblemCode.UNAUTHORIZED,
    403: ProblemCode.FORBIDDEN,
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    409: ProblemCode.CONFLICT,
    413: ProblemCode.PAYLOAD_TOO_LARGE,
    422: ProblemCode.INVALID_INPUT,
    429: ProblemCode.RATE_LIMITED,
    502: ProblemCode.UPSTREAM_FAILED,
    503: ProblemCode.UNAVAILABLE,
}


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. ['body', 'data', 'email'].")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus ``code`` (stable) and, for 422, the fields at fault."""

    type: str = Field(description="urn:portalflow:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, machine-readable; one of ProblemCode.")
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    """``application/problem+json``; ASCII-escaped, so no input can make it unencodable."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class ApiProblem(HTTPException):
    """An HTTP error with its stable code, answered as problem+json."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        code: ProblemCode | str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.code = code or STATUS_CODES.get(status_code, ProblemCode.BAD_REQUEST)
        self.extra = extra


def problem_response(
    status: int,
    code: ProblemCode | str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    """The problem+json answer for ``code``; ``extra`` adds members (RFC 9457 extensions)."""
    title = TITLES.get(code, "Error")  # type: ignore[call-overload]
    body = {
        "type": TYPE_PREFIX + str(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": str(code),
        **extra,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


def from_pipeline_error(exc: PortalflowError) -> ApiProblem:
    """A pipeline's refusal as an HTTP error: 404 NotFound, 409 a reused key, 422 the rest."""
    if isinstance(exc, NotFound):
        return ApiProblem(404, str(exc), ProblemCode.NOT_FOUND)
    if isinstance(exc, IdempotencyConflict):
        return ApiProblem(409, str(exc), exc.code)
    return ApiProblem(422, str(exc), ProblemCode.INVALID_INPUT)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and what: the input may be a password, or text that cannot be encoded.
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in error["loc"]],
            "msg": str(error["msg"]),
            "type": str(error["type"]),
        }
        for error in exc.errors()
    ]


async def _http_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    code = getattr(exc, "code", None) or STATUS_CODES.get(exc.status_code, ProblemCode.BAD_REQUEST)
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(code, "Error")
    return problem_response(exc.status_code, code, detail, exc.headers, **getattr(exc, "extra", {}))


async def _validation_error(_request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    named = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors[:5]
    )
    return problem_response(
        422, ProblemCode.INVALID_REQUEST, named or "the request is invalid", errors=errors
    )


async def _pipeline_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, PortalflowError)
    return await _http_error(request, from_pipeline_error(exc))


async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, ProblemCode.INTERNAL_ERROR, "something went wrong on our side")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(PortalflowError, _pipeline_error)
    app.add_exception_handler(Exception, _unexpected)
