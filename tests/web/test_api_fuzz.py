"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis): no input makes it answer 500,
every answer matches its documented status, content type and schema, and every JSON error is
problem+json with a code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portalflow.config import Settings
from portalflow.models import make_engine, make_session_factory, session_scope
from portalflow.models.schema import upgrade
from portalflow.pipelines.tenancy import api_keys
from portalflow.web.app import create_app

from ..factories import make_inviter, make_org, make_record

ADMIN_TOKEN = "fuzz-admin-token"
KEYS: dict[str, str] = {}


@pytest.fixture
def api_schema(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        org = make_org(session)
        make_inviter(session, org)
        make_record(session, org, "C-1")
        _, KEYS["org"] = api_keys.create_key(session, org.id, "fuzz")
    engine.dispose()
    app = create_app(
        Settings(database_url=url, admin_token=ADMIN_TOKEN, twilio_auth_token="fuzz"),
        enqueue=lambda event_id: None,
    )
    # Nothing leaves the process: the fuzz is about the HTTP layer, not the workers.
    app.state.enqueue_crm_event = lambda event_id: None
    app.state.enqueue_invite_chunks = lambda chunk_ids: None
    app.state.enqueue_action_chunks = lambda chunk_ids: None
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_input_makes_the_api_fail_with_500(api_schema: Any) -> None:
    # Driven through Hypothesis directly: schemathesis's pytest plugin does not support
    # the pytest this project pins.
    auth = {"Authorization": f"Bearer {KEYS['org']}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    statuses: dict[str, set[int]] = {}
    assert len(operations) >= 8  # events, admin, webhooks, portal, reports, ops
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(headers=auth)
            statuses.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            case.validate_response(
                response,
                checks=(
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ),
            )
            content_type = response.headers["content-type"][0]
            if response.status_code >= 400 and "html" not in content_type:
                assert content_type == "application/problem+json"
                assert {"type", "title", "status", "detail", "code"} <= set(response.json())

        check()
    # Every operation was really called, and the key let some calls through to the handlers.
    assert len(statuses) == len(operations)
    assert any(code < 400 for codes in statuses.values() for code in codes)
    print({operation: sorted(codes) for operation, codes in statuses.items()})
