"""The FastAPI application: provider webhooks and a health check.

Run it with ``portalflow serve`` (uvicorn, ``create_app`` as the factory).

Environment read here, besides the ``PORTALFLOW_*`` settings:

- ``PORTALFLOW_PUBLIC_BASE_URL``: scheme and host the providers call (e.g.
  ``https://hooks.example.com``), needed to check Twilio signatures behind a proxy.
  Unset: the request's own URL.
- ``PORTALFLOW_SNS_TEST_CERTIFICATE``: **FOR TESTS ONLY. NEVER SET IT IN PRODUCTION.**
  The path of a PEM certificate used to verify *every* SNS message whatever its
  SigningCertURL, and local (127.0.0.1 / localhost) SubscribeURLs are confirmed. Anyone
  holding the matching private key can then forge SES events.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import make_engine, make_session_factory
from portalflow.pipelines.delivery.sns import CachedCertificateLoader
from portalflow.workers import enqueue
from portalflow.workers.actors import process_provider_event

from . import (
    access_admin,
    admin,
    api_schema,
    crm_webhooks,
    events,
    ops,
    ops_metrics,
    portal,
    portal_auth,
    portal_links,
    portal_records,
    portal_signin,
    portal_signin_pages,
    problems,
    reports,
    unsubscribe,
)
from .body_limit import BodyLimit
from .webhooks import WebhookContext, router

log = logging.getLogger(__name__)

PUBLIC_BASE_URL_ENV = "PORTALFLOW_PUBLIC_BASE_URL"
SNS_TEST_CERTIFICATE_ENV = "PORTALFLOW_SNS_TEST_CERTIFICATE"


def enqueue_provider_event(event_id: int) -> None:
    """Send the ``process_provider_event`` actor message for a committed event."""
    process_provider_event.send(event_id)


def enqueue_dispatch(invitation_ids: list[int]) -> None:
    """Send the ``dispatch_invitation`` messages of committed message rows (sign-in)."""
    enqueue.enqueue_dispatch(invitation_ids)


def create_app(
    settings: Settings | None = None,
    *,
    enqueue: Callable[[int], None] | None = None,
    certificate_loader: Callable[[str], bytes] | None = None,
    confirm_subscription: Callable[[str], None] | None = None,
    allow_local_subscribe_url: bool | None = None,
) -> FastAPI:
    """Build the web app on ``settings`` (from the environment by default).

    ``enqueue`` receives the id of each newly stored provider event after its commit
    (default: :func:`enqueue_provider_event`). ``certificate_loader`` and
    ``confirm_subscription`` replace the SNS certificate fetch and the SubscribeURL GET.
    ``allow_local_subscribe_url`` (tests only; default: whether the test certificate
    variable is set) lets SubscribeURLs on 127.0.0.1 / localhost be confirmed.
    """
    settings = settings or Settings.from_env()
    engine = make_engine(settings.database_url)
    context = _webhook_context(
        settings,
        make_session_factory(engine),
        enqueue=enqueue or enqueue_provider_event,
        certificate_loader=certificate_loader,
        confirm_subscription=confirm_subscription,
        allow_local_subscribe_url=allow_local_subscribe_url,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="portalflow",
        lifespan=lifespan,
        generate_unique_id_function=api_schema.operation_id,
    )
    problems.install(app)
    app.add_middleware(BodyLimit)
    app.state.settings = settings
    app.state.webhooks = context
    app.state.session_factory = context.session_factory
    _include_routers(app, settings)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (the database is not touched)."""
        return {"status": "ok"}

    api_schema.install(app)
    return app


def _include_routers(app: FastAPI, settings: Settings) -> None:
    """Every page and endpoint: webhooks, reports, the portal, events, admin, ops, links."""
    app.include_router(router)
    app.include_router(reports.router)
    app.include_router(portal.router)
    app.include_router(events.router)
    app.include_router(admin.router)
    app.include_router(access_admin.router)
    app.include_router(crm_webhooks.router)
    app.include_router(ops.router)
    app.include_router(ops_metrics.router)
    app.include_router(unsubscribe.build_router(settings))
    app.state.link_pages = portal_links.LinkPages.from_settings(settings)
    app.include_router(portal_links.build_router(settings))
    app.state.signin = portal_signin.SignInContext.from_settings(settings)
    # Tests (or an embedding app) may replace it: a callable taking message ids.
    app.state.enqueue_dispatch = enqueue_dispatch
    app.include_router(portal_signin.router)
    app.include_router(portal_signin_pages.build_pages(settings))
    app.include_router(
        portal_records.build_portal_records_router(current_user=portal_auth.current_portal_user)
    )


def _webhook_context(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    enqueue: Callable[[int], None],
    certificate_loader: Callable[[str], bytes] | None,
    confirm_subscription: Callable[[str], None] | None,
    allow_local_subscribe_url: bool | None,
) -> WebhookContext:
    """What the provider webhooks need: sessions, the enqueue, SNS certificates, Twilio's key."""
    test_certificate_path = os.environ.get(SNS_TEST_CERTIFICATE_ENV, "")
    fixed_certificate: bytes | None = None
    if test_certificate_path:
        log.warning(
            "%s is set: SNS signatures are checked against a LOCAL TEST certificate. "
            "Never use this in production.",
            SNS_TEST_CERTIFICATE_ENV,
        )
        fixed_certificate = Path(test_certificate_path).read_bytes()
    if certificate_loader is None:
        certificate_loader = CachedCertificateLoader(fixed_certificate=fixed_certificate)
    return WebhookContext(
        session_factory=session_factory,
        enqueue=enqueue,
        certificate_loader=certificate_loader,
        twilio_auth_token=settings.twilio_auth_token,
        public_base_url=os.environ.get(PUBLIC_BASE_URL_ENV) or None,
        allow_local_subscribe_url=(
            fixed_certificate is not None
            if allow_local_subscribe_url is None
            else allow_local_subscribe_url
        ),
        confirm_subscription=confirm_subscription,
    )
