"""The sign-in, forgot-password, reset and account pages, beside the accept page.

Server-rendered in the portal's language, CSRF-protected like the accept page; the rules are
the ``signin`` pipelines', and the JSON routes are in :mod:`.portal_signin`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from portalflow.config import Settings
from portalflow.models import EmailKind, SignInRefusal
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.invitations import link_views, password_policy
from portalflow.pipelines.signin import credentials, reset, sessions

from . import csrf, portal_auth, portal_links
from .portal_pages import message, page_language, texts
from .portal_pages import render as render_page
from .portal_signin import (
    FORM_FIELDS,
    LINK_PROBLEM_STATUS,
    MAX_FORM_BYTES,
    REFUSAL_STATUS,
    admit,
    client_address,
    send_later,
    signin_context,
    user_agent,
)


def build_pages(settings: Settings) -> APIRouter:
    """The sign-in, forgot-password, reset-password and account pages of every portal."""
    prefix = urlsplit(settings.portal_base_url).path.rstrip("/")
    pages = APIRouter(tags=["recipient pages"])

    @pages.get(prefix + "/{portal_slug}/sign-in", response_class=HTMLResponse)
    def sign_in_page(request: Request, portal_slug: str) -> Response:
        """The sign-in form: email or number and password, or a code by SMS."""
        return _page(request, portal_slug, "signin", {})

    @pages.post(prefix + "/{portal_slug}/sign-in", response_class=HTMLResponse)
    async def sign_in_submit(
        request: Request, portal_slug: str, background: BackgroundTasks
    ) -> Response:
        """Sign in (``step``: password, send_code or code); on to the account page."""
        form = await _read_form(request)
        return await run_in_threadpool(_sign_in, request, portal_slug, form, background)

    @pages.get(prefix + "/{portal_slug}/forgot-password", response_class=HTMLResponse)
    def forgot_page(request: Request, portal_slug: str) -> Response:
        """Ask for a reset link by email or SMS."""
        return _page(request, portal_slug, "forgot", {})

    @pages.post(prefix + "/{portal_slug}/forgot-password", response_class=HTMLResponse)
    async def forgot_submit(
        request: Request, portal_slug: str, background: BackgroundTasks
    ) -> Response:
        """Send the reset link if the login is a confirmed user's; the same page either way."""
        form = await _read_form(request)
        return await run_in_threadpool(_forgot, request, portal_slug, form, background)

    @pages.get(prefix + "/{portal_slug}/reset-password", response_class=HTMLResponse)
    def reset_page(request: Request, portal_slug: str, token: str = "") -> Response:
        """The new-password form, or the page saying why this link cannot be used."""
        if (wait := portal_links.retry_after(request, token)) is not None:
            return _message(request, "limited", 429, headers={"Retry-After": str(wait)},
                            minutes=math.ceil(wait / 60))  # fmt: skip
        return _reset_form(request, portal_slug, token, None, 200)

    @pages.post(prefix + "/{portal_slug}/reset-password", response_class=HTMLResponse)
    async def reset_submit(request: Request, portal_slug: str) -> Response:
        """Set the new password; every session ends."""
        form = await _read_form(request)
        return await run_in_threadpool(_reset, request, portal_slug, form)

    @pages.get(prefix + "/{portal_slug}/account", response_class=HTMLResponse)
    def account_page(request: Request, portal_slug: str) -> Response:
        """Who is signed in, and a sign-out button; the sign-in page without a session."""
        return _account(request, portal_slug)

    @pages.post(prefix + "/{portal_slug}/account", response_class=HTMLResponse)
    async def sign_out(request: Request, portal_slug: str) -> Response:
        """Sign out: the session ends."""
        form = await _read_form(request)
        return await run_in_threadpool(_sign_out, request, portal_slug, form)

    return pages


def _path(request: Request, portal_slug: str, page: str) -> str:
    return f"{signin_context(request).page_prefix}/{quote(portal_slug, safe='')}/{page}"


def _language(request: Request) -> str:
    return page_language(None, request.headers.get("accept-language"))


def _message(request: Request, key: str, status_code: int, **values: Any) -> Response:
    return message(_language(request), key, status_code, values.pop("org_name", None),
                   values.pop("headers", None), **values)  # fmt: skip


def _portal(request: Request, portal_slug: str) -> credentials.PortalView | None:
    with request.app.state.session_factory() as session:
        return credentials.portal_view(session, portal_slug)


def _with_csrf(request: Request, scope: str, template: str, status_code: int,
               **values: Any) -> Response:  # fmt: skip
    nonce = csrf.nonce_for(request.cookies.get(csrf.COOKIE_NAME))
    values["csrf_token"] = csrf.form_token(signin_context(request).csrf_key, scope, nonce)
    values["action"] = request.url.path
    response = render_page(template, _language(request), status_code, **values)
    response.set_cookie(
        csrf.COOKIE_NAME,
        nonce,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=request.url.path,
    )
    return response


def _csrf_ok(request: Request, scope: str, form: dict[str, str]) -> bool:
    return csrf.is_valid(
        signin_context(request).csrf_key,
        scope,
        request.cookies.get(csrf.COOKIE_NAME),
        form.get("csrf_token"),
    )


def _page(
    request: Request,
    portal_slug: str,
    page: str,
    form: dict[str, str],
    *,
    error: str | None = None,
    notice: str | None = None,
    step: str = "password",
    status_code: int = 200,
) -> Response:
    """The sign-in (``signin``) or forgot-password (``forgot``) page of the portal."""
    portal = _portal(request, portal_slug)
    if portal is None:
        return _message(request, "no_portal", 404)
    words = texts(_language(request))
    title_key = "signin_title" if page == "signin" else "forgot_title"
    return _with_csrf(
        request,
        f"{page}:{portal_slug}",
        f"{page}.html",
        status_code,
        portal=portal,
        title=words[title_key].format(portal=portal.portal_name),
        error=error,
        notice=notice,
        step=step,
        login=form.get("login", ""),
        phone=form.get("phone", ""),
        forgot_url=_path(request, portal_slug, "forgot-password"),
        sign_in_url=_path(request, portal_slug, "sign-in"),
    )


def _refusal_text(request: Request, refusal: SignInRefusal, retry_after: int | None) -> str:
    words = texts(_language(request))
    return words[f"refused_{refusal.value}"].format(minutes=math.ceil((retry_after or 60) / 60))


def _sign_in(
    request: Request, portal_slug: str, form: dict[str, str], background: BackgroundTasks
) -> Response:
    if not _csrf_ok(request, f"signin:{portal_slug}", form):
        return _message(request, "form_expired", 403)
    step = form.get("step", "password")
    guard = signin_context(request).guard
    words = texts(_language(request))
    try:
        if step == "send_code":
            admission = admit(request, portal_slug, form.get("phone", ""), phone_only=True)
            if admission.refusal is not None:
                error = _refusal_text(request, admission.refusal, admission.retry_after)
                return _page(request, portal_slug, "signin", form, error=error, step="code",
                             status_code=429)  # fmt: skip
            background.add_task(send_later, request, admission, credentials.send_sign_in_code)
            return _page(request, portal_slug, "signin", form, notice=words["code_sent"],
                         step="code")  # fmt: skip
        with request.app.state.session_factory() as session:
            if step == "code":
                answer = credentials.sign_in_with_code(
                    session, guard, portal_slug=portal_slug, phone=form.get("phone", ""),
                    code=form.get("code", ""), client_ip=client_address(request),
                    user_agent=user_agent(request),
                )  # fmt: skip
            else:
                answer = credentials.sign_in_with_password(
                    session, guard, portal_slug=portal_slug, login=form.get("login", ""),
                    password=form.get("password", ""), client_ip=client_address(request),
                    user_agent=user_agent(request),
                )  # fmt: skip
            session.commit()
    except NotFound:
        return _message(request, "no_portal", 404)
    except InvalidInput:
        return _page(request, portal_slug, "signin", form, error=words["invalid_login"],
                     step="code" if step == "code" else "password", status_code=422)  # fmt: skip
    if answer.refusal is not None or answer.opened is None:
        refusal = answer.refusal or SignInRefusal.INVALID_CREDENTIALS
        return _page(
            request, portal_slug, "signin", form,
            error=_refusal_text(request, refusal, answer.retry_after),
            step="code" if step == "code" else "password",
            status_code=REFUSAL_STATUS.get(refusal, 400),
        )  # fmt: skip
    response = RedirectResponse(_path(request, portal_slug, "account"), 303)
    portal_auth.set_session_cookie(response, request, answer.opened.token, answer.opened.expires_at)
    return response


def _forgot(
    request: Request, portal_slug: str, form: dict[str, str], background: BackgroundTasks
) -> Response:
    if not _csrf_ok(request, f"forgot:{portal_slug}", form):
        return _message(request, "form_expired", 403)
    try:
        admission = admit(request, portal_slug, form.get("login", ""), phone_only=False)
    except NotFound:
        return _message(request, "no_portal", 404)
    except InvalidInput:
        words = texts(_language(request))
        return _page(request, portal_slug, "forgot", form, error=words["invalid_login"],
                     status_code=422)  # fmt: skip
    if admission.refusal is not None:
        error = _refusal_text(request, admission.refusal, admission.retry_after)
        return _page(request, portal_slug, "forgot", form, error=error, status_code=429)
    background.add_task(send_later, request, admission, reset.send_reset)
    return _message(request, "forgot_sent", 200)


def _reset_scope(token: str) -> str:
    return f"reset:{hashlib.sha256(token.encode('utf-8')).hexdigest()}"


def _reset_form(
    request: Request, portal_slug: str, token: str, error: str | None, status_code: int
) -> Response:
    with request.app.state.session_factory() as session:
        view = link_views.describe_link(session, token, EmailKind.RESET_PASSWORD, portal_slug)
    if view.problem is not None:
        problem = view.problem.value
        return _message(request, f"reset_{problem}", LINK_PROBLEM_STATUS.get(problem, 404),
                        forgot_url=_path(request, portal_slug, "forgot-password"))  # fmt: skip
    words = texts(_language(request))
    return _with_csrf(
        request,
        _reset_scope(token),
        "reset.html",
        status_code,
        view=view,
        token=token,
        title=words["reset_title"],
        error=error,
        min_length=password_policy.MIN_PASSWORD_LENGTH,
        max_length=password_policy.MAX_PASSWORD_LENGTH,
    )


def _reset(request: Request, portal_slug: str, form: dict[str, str]) -> Response:
    token = form.get("token", "")
    if not _csrf_ok(request, _reset_scope(token), form):
        return _message(request, "form_expired", 403)
    words = texts(_language(request))
    password = form.get("password", "")
    try:
        password_policy.check_confirmation(password, form.get("password_confirm", ""))
        with request.app.state.session_factory() as session:
            view = link_views.describe_link(session, token, EmailKind.RESET_PASSWORD, portal_slug)
            if view.problem is not None:
                return _reset_form(request, portal_slug, token, None, 200)
            answer = reset.reset_password(
                session,
                signin_context(request).guard,
                token=token,
                password=password,
                client_ip=client_address(request),
            )
            session.commit()
    except InvalidInput as exc:
        problem = getattr(exc, "problem", None)
        error = words[problem.value] if problem is not None else words["too_weak"]
        return _reset_form(request, portal_slug, token, error, 422)
    if answer.refusal == SignInRefusal.INVALID_RESET_TOKEN:
        return _reset_form(request, portal_slug, token, None, 200)
    if answer.refusal is not None:
        return _message(request, "not_allowed", REFUSAL_STATUS.get(answer.refusal, 409))
    portal = _portal(request, portal_slug)
    response = _message(request, "reset_done", 200,
                        portal=portal.portal_name if portal else portal_slug)  # fmt: skip
    portal_auth.clear_session_cookie(response, request)
    return response


def _account(request: Request, portal_slug: str) -> Response:
    checked = portal_auth.check_request(request)
    portal = _portal(request, portal_slug)
    if portal is None:
        return _message(request, "no_portal", 404)
    if checked.refusal is not None or checked.org_id != portal.org_id:
        return RedirectResponse(_path(request, portal_slug, "sign-in"), 303)
    assert checked.portal_user_id is not None
    with request.app.state.session_factory() as session:
        user = sessions.signed_in_user(session, checked.portal_user_id)
    words = texts(_language(request))
    return _with_csrf(
        request,
        f"account:{portal_slug}",
        "account.html",
        200,
        portal=portal,
        title=words["account_title"],
        who=user.email or user.phone or "",
    )


def _sign_out(request: Request, portal_slug: str, form: dict[str, str]) -> Response:
    if not _csrf_ok(request, f"account:{portal_slug}", form):
        return _message(request, "form_expired", 403)
    token = portal_auth.session_token(request)
    if token:
        with request.app.state.session_factory() as session:
            sessions.end_session(session, token)
            session.commit()
    portal = _portal(request, portal_slug)
    response = _message(request, "signed_out", 200,
                        portal=portal.portal_name if portal else portal_slug)  # fmt: skip
    portal_auth.clear_session_cookie(response, request)
    return response


async def _read_form(request: Request) -> dict[str, str]:
    """The urlencoded form, first value of each known field; oversized bodies read as empty."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50)
    return {name: fields[name][0] for name in FORM_FIELDS if fields.get(name)}
