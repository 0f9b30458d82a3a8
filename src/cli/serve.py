"""``portalflow serve``: the webhook and health-check HTTP server (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import err_console, settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve portalflow's HTTP side: what recipients open, what the CRM and admins call.

    - Recipients: the accept and confirm-email pages under `PORTALFLOW_PORTAL_BASE_URL`'s
      path (`/portal/<slug>/accept`, `/portal/<slug>/confirm-email`), SMS short links
      `/s/<code>`, the opt-out link `/portal/unsubscribe/<token>`, and the JSON
      `POST /portal/accept` and `POST /portal/confirm-email`.
    - The CRM: `POST /events` and the admin API `/admin/...` (org API key).
    - Admins: `GET /orgs/{id}/failures` (bearer `PORTALFLOW_ADMIN_TOKEN`), the ops page `/ops`
      (Basic, the same token), `/metrics` (Prometheus).
    - Providers: `POST /webhooks/ses`, `POST /webhooks/twilio`.
    - `GET /healthz`, and the schema at `/openapi.json` (browsable at `/docs`).

    Each webhook verifies its caller (SNS signature, `X-Twilio-Signature`), stores the raw
    event, commits, and enqueues `process_provider_event` on `PORTALFLOW_BROKER_URL`; run
    `portalflow worker` beside it. Set `PORTALFLOW_TWILIO_AUTH_TOKEN` for Twilio and
    `PORTALFLOW_PUBLIC_BASE_URL` (e.g. `https://hooks.example.com`) when a proxy sits in
    front.

    Example: `portalflow serve --host 0.0.0.0 --port 8080`
    """
    import uvicorn

    current = settings()
    if current.embedded_broker:  # also fails early on a bad PORTALFLOW_* variable
        err_console.print(
            "[yellow]warning:[/] PORTALFLOW_BROKER_URL is not set: events are stored, but "
            "their messages go to an in-process broker that no worker reads."
        )
    # X-Forwarded-* are believed only from PORTALFLOW_TRUSTED_PROXIES (uvicorn would
    # otherwise believe 127.0.0.1), the same proxies the link rate limits trust.
    trusted = ",".join(current.trusted_proxies)
    uvicorn.run(
        "portalflow.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
