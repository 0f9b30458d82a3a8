"""The pages behind every link a recipient gets: accept, confirm email, SMS short links.

- ``GET <base path>/<slug>/accept?token=...`` shows the accept form (password, language,
  time format, time zone, country); ``POST`` to the same path accepts.
- ``GET <base path>/<slug>/confirm-email?token=...`` shows a Confirm button; ``POST``
  confirms.
- ``GET /s/<code>`` sends an SMS code on to its accept page (303).

``<base path>`` is the path of ``PORTALFLOW_PORTAL_BASE_URL`` (``/portal`` by default), so
the links the emails carry are the routes here. GET only reads
(:mod:`portalflow.pipelines.invitations.link_views`): mail scanners fetch every link.
Every request is counted (:mod:`.throttle`, numbers in :mod:`.link_rate_rules`) per client
address and per token; over the limit the answer is 429 with ``Retry-After``. POSTs carry a signed
double-submit CSRF token (:mod:`.csrf`). The rules are the pipelines'; this module parses
and presents.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from portalflow.config import Settings
from portalflow.models import EmailKind
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.invitations import acceptance, link_views, password_policy
from portalflow.pipelines.invitations.link_keys import link_key
from portalflow.pipelines.users.lifecycle import InvalidTransition

from . import csrf
from .client_ip import client_ip
from .portal_pages import (
    country_choices,
    language_choices,
    languages,
    message,
    page_language,
    texts,
)
from .portal_pages import render as render_page
from .throttle import Throttle

MAX_FORM_BYTES = 16 * 1024
FORM_FIELDS = ("token", "csrf_token", "password", "password_confirm", "language",
               "time_format", "time_zone", "country")  # fmt: skip

_PROBLEM_STATUS = {"unknown": 404, "used": 410, "expired": 410, "superseded": 410}


@dataclass
class LinkPages:
    """What the link pages need beside the database: counters, CSRF key, proxies, base URL."""

    throttle: Throttle
    csrf_key: bytes
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    portal_base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkPages:
        """Counters in the configured Redis (else memory), the deployment's link key."""
        return cls(
            throttle=Throttle.from_settings(settings),
            csrf_key=csrf.csrf_key(link_key(settings)),
            trusted_proxies=settings.trusted_networks(),
            portal_base_url=settings.portal_base_url,
        )


def retry_after(request: Request, token: str | None) -> int | None:
    """Count this request to a link endpoint; None when allowed, else seconds to wait."""
    pages: LinkPages = request.app.state.link_pages
    peer = request.client.host if request.client else None
    client = client_ip(peer, request.headers.get("x-forwarded-for"), pages.trusted_proxies)
    return pages.throttle.hit(client, token)


def build_router(settings: Settings) -> APIRouter:
    """The link routes, under the path of ``PORTALFLOW_PORTAL_BASE_URL``."""
    prefix = urlsplit(settings.portal_base_url).path.rstrip("/")
    router = APIRouter(tags=["recipient pages"])

    @router.get(prefix + "/{portal_slug}/accept", response_class=HTMLResponse)
    def accept_page(request: Request, portal_slug: str, token: str = "") -> Response:
        """The accept form, or the page saying why this link cannot be used."""
        return _show_form(request, portal_slug, token, EmailKind.ACCEPT_INVITATION)

    @router.post(prefix + "/{portal_slug}/accept", response_class=HTMLResponse)
    async def accept_submit(request: Request, portal_slug: str) -> Response:
        """Accept: set the password and locale; the portal user is confirmed."""
        form = await _read_form(request)
        return await run_in_threadpool(
            _submit, request, portal_slug, form, EmailKind.ACCEPT_INVITATION
        )

    @router.get(prefix + "/{portal_slug}/confirm-email", response_class=HTMLResponse)
    def confirm_page(request: Request, portal_slug: str, token: str = "") -> Response:
        """The Confirm button, or the page saying why this link cannot be used."""
        return _show_form(request, portal_slug, token, EmailKind.CONFIRM_EMAIL)

    @router.post(prefix + "/{portal_slug}/confirm-email", response_class=HTMLResponse)
    async def confirm_submit(request: Request, portal_slug: str) -> Response:
        """Confirm the changed email address; access comes back with the same password."""
        form = await _read_form(request)
        return await run_in_threadpool(_submit, request, portal_slug, form, EmailKind.CONFIRM_EMAIL)

    @router.get("/s/{code}", response_class=HTMLResponse)
    def short_link(request: Request, code: str) -> Response:
        """An SMS short code: on to its page, or the neutral page for codes we never sent."""
        if (limited := _limited(request, code)) is not None:
            return limited
        pages: LinkPages = request.app.state.link_pages
        with request.app.state.session_factory() as session:
            target = link_views.short_code_target(session, code, pages.portal_base_url)
        if target is None:
            return _problem(request, "unknown", None)
        return RedirectResponse(
            target, 303, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )

    return router


# -- GET ------------------------------------------------------------------------------------


def _show_form(request: Request, portal_slug: str, token: str, kind: EmailKind) -> Response:
    if (limited := _limited(request, token)) is not None:
        return limited
    with request.app.state.session_factory() as session:
        view = link_views.describe_link(session, token, kind, portal_slug)
    if view.problem is not None:
        return _problem(request, view.problem.value, view.language)
    return _form(request, view, token, kind, {}, None, 200)


def _form(
    request: Request,
    view: link_views.LinkView,
    token: str,
    kind: EmailKind,
    submitted: dict[str, str],
    error: str | None,
    status_code: int,
) -> Response:
    language = page_language(view.language, request.headers.get("accept-language"))
    nonce = csrf.nonce_for(request.cookies.get(csrf.COOKIE_NAME))
    pages: LinkPages = request.app.state.link_pages
    values: dict[str, object] = {
        "view": view,
        "token": token,
        "action": request.url.path,
        "csrf_token": csrf.form_token(pages.csrf_key, _scope(kind, token), nonce),
        "error": error,
    }
    if kind == EmailKind.ACCEPT_INVITATION:
        assert view.defaults is not None
        default_language = page_language(view.defaults.language, None)
        values |= {
            "title": texts(language)["accept_title"].format(portal=view.portal_name),
            "languages": language_choices(),
            "time_formats": acceptance.TIME_FORMATS,
            "time_zones": acceptance.time_zones(),
            "countries": country_choices(language),
            "min_length": password_policy.MIN_PASSWORD_LENGTH,
            "max_length": password_policy.MAX_PASSWORD_LENGTH,
            "chosen": {
                "language": submitted.get("language") or default_language,
                "time_format": submitted.get("time_format") or view.defaults.time_format,
                "time_zone": submitted.get("time_zone") or view.defaults.time_zone,
                "country": submitted.get("country") or view.defaults.country,
            },
        }
        template = "accept.html"
    else:
        values["title"] = texts(language)["confirm_title"]
        template = "confirm.html"
    response = render_page(template, language, status_code, **values)
    response.set_cookie(
        csrf.COOKIE_NAME,
        nonce,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=request.url.path,
    )
    return response


# -- POST -----------------------------------------------------------------------------------


async def _read_form(request: Request) -> dict[str, str]:
    """The urlencoded form, first value of each known field; oversized bodies read as empty."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50)
    return {name: fields[name][0] for name in FORM_FIELDS if fields.get(name)}


def _submit(request: Request, portal_slug: str, form: dict[str, str], kind: EmailKind) -> Response:
    token = form.get("token", "")
    if (limited := _limited(request, token)) is not None:
        return limited
    pages: LinkPages = request.app.state.link_pages
    if not csrf.is_valid(
        pages.csrf_key,
        _scope(kind, token),
        request.cookies.get(csrf.COOKIE_NAME),
        form.get("csrf_token"),
    ):
        return _message(request, None, "form_expired", 403)
    with request.app.state.session_factory() as session:
        view = link_views.describe_link(session, token, kind, portal_slug)
        if view.problem is not None:
            return _problem(request, view.problem.value, view.language)
        try:
            if kind == EmailKind.ACCEPT_INVITATION:
                password = form.get("password", "")
                password_policy.check_confirmation(password, form.get("password_confirm", ""))
                user = acceptance.accept_invitation(
                    session,
                    token,
                    password=password,
                    language=form.get("language") or None,
                    time_zone=form.get("time_zone") or None,
                    time_format=form.get("time_format") or None,
                    country=form.get("country") or None,
                )
            else:
                user = acceptance.confirm_email(session, token)
            user_language = user.language
            session.commit()
        except acceptance.AcceptanceError as exc:
            session.rollback()
            return _problem(request, link_views.shown_problem(exc.problem).value, view.language)
        except InvalidTransition:
            session.rollback()
            return _message(request, view.language, "not_allowed", 409)
        except InvalidInput as exc:
            session.rollback()
            words = texts(page_language(view.language, request.headers.get("accept-language")))
            problem = getattr(exc, "problem", None)
            error = words[problem.value] if problem is not None else words["invalid_locale"]
            return _form(request, view, token, kind, form, error, 422)
    done = "accepted" if kind == EmailKind.ACCEPT_INVITATION else "confirmed"
    language = user_language if user_language in languages() else view.language
    return _message(request, language, done, 200, org_name=view.org_name, portal=view.portal_name)


# -- shared ---------------------------------------------------------------------------------


def _scope(kind: EmailKind, token: str) -> str:
    return f"{kind.value}:{hashlib.sha256(token.encode('utf-8')).hexdigest()}"


def _limited(request: Request, token: str | None) -> Response | None:
    wait = retry_after(request, token)
    if wait is None:
        return None
    return _message(
        request, None, "limited", 429, headers={"Retry-After": str(wait)},
        minutes=math.ceil(wait / 60),
    )  # fmt: skip


def _problem(request: Request, problem: str, invitation_language: str | None) -> Response:
    return _message(request, invitation_language, problem, _PROBLEM_STATUS[problem])


def _message(
    request: Request,
    invitation_language: str | None,
    key: str,
    status_code: int,
    org_name: str | None = None,
    headers: dict[str, str] | None = None,
    **placeholders: object,
) -> Response:
    language = page_language(invitation_language, request.headers.get("accept-language"))
    return message(language, key, status_code, org_name, headers, **placeholders)
