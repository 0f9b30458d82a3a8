"""The OpenAPI document: error answers as problem+json, operation ids, security schemes.

FastAPI documents the success answers and the security schemes of the routes' own
dependencies (``OrgApiKey``, ``AdminToken``, ``OpsBasic``); this adds what every error
looks like (:class:`.problems.Problem`), so a client generated from the schema knows each
401/403/404/409/413/422/429 it can meet. The recipient's HTML pages answer their errors
with pages, and are documented so.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .problems import MEDIA_TYPE, Problem

# The recipient's routes count requests against the link rate limits.
RATE_LIMITED_TAGS = {"portal", "recipient pages"}

DESCRIPTIONS = {
    "400": "The request cannot be read.",
    "401": "No credential, or an unknown or revoked one.",
    "403": "The credential does not allow this.",
    "404": "Not found (in the credential's org).",
    "409": "A conflict: a reused Idempotency-Key or event id, or a status that forbids it.",
    "413": "The request body is over 1 MB.",
    "422": "The request is invalid; ``errors`` names each field.",
    "429": "Too many requests; see Retry-After.",
    "default": "Any other error.",
}


def operation_id(route: APIRoute) -> str:
    """A route's operation id: its function's name (unique, checked by a test)."""
    return route.name


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document described above (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app``."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            _document_errors(operation)
    return schema


def _problem(code: str) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[code],
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _page(code: str) -> dict[str, Any]:
    return {"description": DESCRIPTIONS[code], "content": {"text/html": {"schema": {}}}}


def _is_page(operation: dict[str, Any]) -> bool:
    """A public HTML page (a recipient's): its errors are pages too."""
    ok = operation["responses"].get("200", {}).get("content", {})
    return not operation.get("security") and set(ok) == {"text/html"}


def _document_errors(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    codes = {"422"} if "422" in responses else set()
    if "requestBody" in operation:
        codes |= {"413", "422"}
    if operation.get("security"):
        codes |= {"401", "403", "404"}
    if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
        codes.add("404")
    if "409" in responses:
        codes.add("409")
    page = _is_page(operation)
    if page:  # their own errors are pages; a malformed or oversized request is not theirs
        codes &= {"413", "422"}
    if RATE_LIMITED_TAGS & set(operation.get("tags", [])):
        responses["429"] = _page("429") if page else _problem("429")
    for code in sorted(codes):
        responses[code] = _problem(code)
    responses["default"] = _page("default") if page else _problem("default")
