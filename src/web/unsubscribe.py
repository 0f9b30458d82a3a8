"""The opt-out link of every invitation email: GET shows what it stops, POST stops it.

``POST`` is what RFC 8058 mailbox providers send for their unsubscribe button (form body
``List-Unsubscribe=One-Click``, no cookies), and what the page's button sends; it needs no
CSRF token because the signed URL itself is the capability. The rule lives in
:mod:`portalflow.pipelines.invitations.opt_out`; this module parses and presents.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, Template, select_autoescape

from portalflow.config import Settings
from portalflow.pipelines.invitations import opt_out
from portalflow.pipelines.invitations.link_keys import link_key

from .portal_pages import SECURITY_HEADERS

TITLES = {
    "confirm": "Stop invitations?",
    "done": "You will get no more invitations",
    "unknown": "This link does not work",
}


@lru_cache(maxsize=1)
def _page() -> Template:
    environment = Environment(
        loader=PackageLoader("portalflow", "templates"), autoescape=select_autoescape()
    )
    return environment.get_template("portal/unsubscribe.html")


def _show(state: str, target: opt_out.OptOutTarget | None = None) -> HTMLResponse:
    values: dict[str, Any] = {"page": f"unsubscribe-{state}", "title": TITLES[state]}
    values["language"] = "en"
    if target is not None:
        values |= {"org_name": target.org_name, "address": opt_out.masked(target.address)}
    status = 404 if state == "unknown" else 200
    return HTMLResponse(_page().render(values), status_code=status, headers=SECURITY_HEADERS)


def build_router(settings: Settings) -> APIRouter:
    """The routes under the path of ``PORTALFLOW_PORTAL_BASE_URL``, where the links point."""
    router = APIRouter(prefix=urlsplit(settings.portal_base_url).path.rstrip("/"), tags=["portal"])

    @router.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def show(request: Request, token: str) -> HTMLResponse:
        """What the link would stop; changes nothing (mail scanners fetch every link)."""
        with request.app.state.session_factory() as session:
            target = opt_out.describe(session, link_key(settings), token)
        return _show("unknown") if target is None else _show("confirm", target)

    @router.post("/unsubscribe/{token}", response_class=HTMLResponse)
    def stop(request: Request, token: str) -> HTMLResponse:
        """Put the address on its org's suppression list as ``opted_out`` (idempotent)."""
        with request.app.state.session_factory() as session:
            target = opt_out.opt_out(session, link_key(settings), token)
            session.commit()
        return _show("unknown") if target is None else _show("done", target)

    return router
