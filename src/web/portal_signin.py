"""Portal sign-in over HTTP: the JSON API and the browser pages.

JSON (problem+json errors; a session refused has code ``sign_in_refused`` and its
``problem``, one of :class:`~portalflow.models.SignInRefusal`):

- ``POST /portal/login`` ``{"portal", "email" | "phone", "password" | "code"}``: a session
  (200, its token in the body and in the session cookie); 401 ``invalid_credentials``,
  403 ``unconfirmed`` / ``login_suspended`` / ``deactivated`` / ``removed``, 429
  ``locked_out`` / ``rate_limited`` with ``Retry-After``.
- ``POST /portal/login/code`` ``{"portal", "phone"}``: 202, a code is sent by the
  verification SMS if the number is a confirmed user's.
- ``POST /portal/logout``: 200 ``{"ended": true|false}``, the session ends (none at all is
  fine too).
- ``GET /portal/me``: who the session is (401 without a live one).
- ``POST /portal/password/forgot`` ``{"portal", "email" | "phone"}``: 202, a reset link by
  email or SMS if the login is a confirmed user's.
- ``POST /portal/password/reset`` ``{"token", "password"}``: 200; 400 ``invalid_token``
  (``problem``: unknown, used, expired, superseded, not_sent), 422 for a weak password.

Pages, under the path of ``PORTALFLOW_PORTAL_BASE_URL`` beside the accept page:
``<slug>/sign-in`` (password, or a code by SMS), ``<slug>/forgot-password``,
``<slug>/reset-password?token=...`` (the link the reset email and SMS carry) and
``<slug>/account`` (who is signed in, sign out). GET only reads; each POST carries a
signed double-submit CSRF token (:mod:`.csrf`). Opening a reset link counts against the
link rate limits (:mod:`.link_rate_rules`), as the accept page does.

The code and reset requests are answered before anyone is looked up: which account gets a
message is decided after the answer went out, so neither its words nor its timing tell
whether an account exists. The rules are :mod:`portalflow.pipelines.signin`'s; this
module parses, calls and presents.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from portalflow.config import Settings
from portalflow.events import RequestModel
from portalflow.models import SIGN_IN_REFUSAL_DESCRIPTIONS, EmailKind, SignInRefusal
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.invitations import link_views, password_policy
from portalflow.pipelines.invitations.link_keys import link_key
from portalflow.pipelines.signin import credentials, reset, sessions
from portalflow.pipelines.signin.credentials import MessageAdmission, MessageRequest
from portalflow.pipelines.signin.guard import SignInGuard

from . import csrf, portal_auth, portal_links
from .client_ip import client_ip
from .portal_auth import PortalPrincipal, current_portal_user
from .portal_pages import message, page_language, texts
from .portal_pages import render as render_page
from .problems import ProblemCode, problem_response

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024
FORM_FIELDS = ("csrf_token", "step", "login", "password", "password_confirm", "phone",
               "code", "token")  # fmt: skip
REFUSAL_STATUS: dict[SignInRefusal, int] = {
    SignInRefusal.INVALID_CREDENTIALS: 401,
    SignInRefusal.UNCONFIRMED: 403,
    SignInRefusal.LOGIN_SUSPENDED: 403,
    SignInRefusal.DEACTIVATED: 403,
    SignInRefusal.REMOVED: 403,
    SignInRefusal.LOCKED_OUT: 429,
    SignInRefusal.RATE_LIMITED: 429,
    SignInRefusal.INVALID_RESET_TOKEN: 400,
}
_LINK_PROBLEM_STATUS = {"unknown": 404, "used": 410, "expired": 410, "superseded": 410}


@dataclass
class SignInContext:
    """What sign-in needs beside the database: the guard, the CSRF key, the proxies."""

    guard: SignInGuard
    csrf_key: bytes
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    page_prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInContext:
        """Counters in the configured Redis (else memory), the deployment's link key."""
        credentials.dummy_hash()  # made now, so the first unknown login costs no more
        return cls(
            guard=SignInGuard.from_url(settings.send_rate_redis_url),
            csrf_key=csrf.csrf_key(link_key(settings)),
            trusted_proxies=settings.trusted_networks(),
            page_prefix=urlsplit(settings.portal_base_url).path.rstrip("/"),
        )


def _context(request: Request) -> SignInContext:
    return request.app.state.signin  # type: ignore[no-any-return]


def _client(request: Request) -> str:
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    return client_ip(peer, forwarded, _context(request).trusted_proxies) or "unknown"


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


# -- the JSON API -----------------------------------------------------------------------------


class LoginRequest(RequestModel):
    portal: str = Field(max_length=63, description="The portal's URL slug, e.g. 'zylker'.")
    email: str | None = Field(None, max_length=320, description="Email-preference user types.")
    phone: str | None = Field(None, max_length=40, description="Phone-preference user types.")
    password: str | None = Field(None, max_length=1024, repr=False)
    code: str | None = Field(None, max_length=12, repr=False, description="The SMS code.")

    @model_validator(mode="after")
    def _one_way_in(self) -> LoginRequest:
        if (self.email is None) == (self.phone is None):
            raise ValueError("give either 'email' or 'phone'")
        if (self.password is None) == (self.code is None):
            raise ValueError("give either 'password' or 'code'")
        if self.code is not None and self.phone is None:
            raise ValueError("a 'code' signs in with the 'phone' it was sent to")
        return self


class CodeRequest(RequestModel):
    portal: str = Field(max_length=63)
    phone: str = Field(max_length=40)


class ForgotRequest(RequestModel):
    portal: str = Field(max_length=63)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)

    @model_validator(mode="after")
    def _one_login(self) -> ForgotRequest:
        if (self.email is None) == (self.phone is None):
            raise ValueError("give either 'email' or 'phone'")
        return self


class ResetRequest(RequestModel):
    token: str = Field(max_length=200)
    password: str = Field(max_length=1024, repr=False)


class SessionAnswer(BaseModel):
    portal_user_id: int
    org_id: int
    session_token: str = Field(description="Send it as 'Authorization: Bearer <token>'.")
    expires_at: datetime


class AcceptedAnswer(BaseModel):
    detail: str


class MeAnswer(BaseModel):
    portal_user_id: int
    org_id: int
    user_type_id: int
    user_type: str
    status: str
    email: str | None
    phone: str | None
    language: str | None
    time_zone: str | None
    session_expires_at: datetime


class LogoutAnswer(BaseModel):
    ended: bool = Field(description="Whether a live session was ended.")


class ResetAnswer(BaseModel):
    portal_user_id: int
    sessions_ended: int


def _refused(refusal: SignInRefusal, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return problem_response(
        REFUSAL_STATUS.get(refusal, 400),
        ProblemCode.SIGN_IN_REFUSED,
        SIGN_IN_REFUSAL_DESCRIPTIONS[refusal],
        headers=headers,
        problem=refusal.value,
    )


def _send_later(
    request: Request,
    admission: MessageAdmission,
    send: Callable[[Session, MessageAdmission], MessageRequest],
) -> None:
    """Decide who gets the message, write it, commit, enqueue: after the answer went out."""
    state = request.app.state
    try:
        with state.session_factory() as session:
            answer = send(session, admission)
            session.commit()
        if answer.message_ids:
            state.enqueue_dispatch(answer.message_ids)
    except Exception:  # the requester was answered already; the rows recover the rest
        log.exception("a sign-in message could not be queued")


def _admit(request: Request, portal: str, login: str, phone_only: bool) -> MessageAdmission:
    with request.app.state.session_factory() as session:
        return credentials.admit_message_request(
            session,
            _context(request).guard,
            portal_slug=portal,
            login=login,
            client_ip=_client(request),
            phone_only=phone_only,
        )


router = APIRouter(prefix="/portal", tags=["portal"])


@router.post("/login", response_model=SessionAnswer)
def login(request: Request, body: LoginRequest) -> Any:
    """Sign in: email and password, or phone and a code (or password); opens a session."""
    guard = _context(request).guard
    with request.app.state.session_factory() as session:
        if body.code is not None:
            assert body.phone is not None
            answer = credentials.sign_in_with_code(
                session, guard, portal_slug=body.portal, phone=body.phone, code=body.code,
                client_ip=_client(request), user_agent=_user_agent(request),
            )  # fmt: skip
        else:
            assert body.password is not None
            answer = credentials.sign_in_with_password(
                session, guard, portal_slug=body.portal, login=body.email or body.phone or "",
                password=body.password, client_ip=_client(request),
                user_agent=_user_agent(request),
            )  # fmt: skip
        session.commit()
    if answer.refusal is not None or answer.opened is None:
        return _refused(answer.refusal or SignInRefusal.INVALID_CREDENTIALS, answer.retry_after)
    opened = answer.opened
    response = Response(
        SessionAnswer(
            portal_user_id=opened.portal_user_id,
            org_id=opened.org_id,
            session_token=opened.token,
            expires_at=opened.expires_at,
        ).model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
    portal_auth.set_session_cookie(response, request, opened.token, opened.expires_at)
    return response


@router.post("/login/code", status_code=202, response_model=AcceptedAnswer)
def request_code(request: Request, body: CodeRequest, background: BackgroundTasks) -> Any:
    """Send a one-time sign-in code by SMS, if the number is a confirmed user's."""
    admission = _admit(request, body.portal, body.phone, phone_only=True)
    if admission.refusal is not None:
        return _refused(admission.refusal, admission.retry_after)
    background.add_task(_send_later, request, admission, credentials.send_sign_in_code)
    return AcceptedAnswer(detail=MessageRequest(None).detail)


@router.post("/logout", response_model=LogoutAnswer)
def logout(request: Request, response: Response) -> Any:
    """End the request's session; signing out without one is fine too."""
    token = portal_auth.session_token(request)
    ended = False
    if token:
        with request.app.state.session_factory() as session:
            ended = sessions.end_session(session, token)
            session.commit()
    portal_auth.clear_session_cookie(response, request)
    return LogoutAnswer(ended=ended)


@router.get("/me", response_model=MeAnswer)
def me(request: Request, user: Annotated[PortalPrincipal, Depends(current_portal_user)]) -> Any:
    """Who the session signs in."""
    with request.app.state.session_factory() as session:
        found = sessions.signed_in_user(session, user.portal_user_id)
    return MeAnswer(
        portal_user_id=found.portal_user_id,
        org_id=found.org_id,
        user_type_id=found.user_type_id,
        user_type=found.user_type,
        status=found.status.value,
        email=found.email,
        phone=found.phone,
        language=found.language,
        time_zone=found.time_zone,
        session_expires_at=user.expires_at,
    )


@router.post("/password/forgot", status_code=202, response_model=AcceptedAnswer)
def forgot_password(request: Request, body: ForgotRequest, background: BackgroundTasks) -> Any:
    """Send a reset link (email or SMS, by the user type), if the login is a confirmed user's."""
    admission = _admit(request, body.portal, body.email or body.phone or "", phone_only=False)
    if admission.refusal is not None:
        return _refused(admission.refusal, admission.retry_after)
    background.add_task(_send_later, request, admission, reset.send_reset)
    return AcceptedAnswer(detail=MessageRequest(None).detail)


@router.post("/password/reset", response_model=ResetAnswer)
def reset_password(request: Request, body: ResetRequest) -> Any:
    """Set a new password with a reset token; every session of the user ends."""
    with request.app.state.session_factory() as session:
        answer = reset.reset_password(
            session,
            _context(request).guard,
            token=body.token,
            password=body.password,
            client_ip=_client(request),
        )
        session.commit()
    if answer.refusal == SignInRefusal.INVALID_RESET_TOKEN:
        return problem_response(
            400, ProblemCode.INVALID_TOKEN, answer.detail, problem=answer.problem or "unknown"
        )
    if answer.refusal is not None or answer.portal_user_id is None:
        return _refused(answer.refusal or SignInRefusal.INVALID_RESET_TOKEN, answer.retry_after)
    return ResetAnswer(portal_user_id=answer.portal_user_id, sessions_ended=answer.sessions_ended)


# -- the pages --------------------------------------------------------------------------------


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
    return f"{_context(request).page_prefix}/{quote(portal_slug, safe='')}/{page}"


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
    values["csrf_token"] = csrf.form_token(_context(request).csrf_key, scope, nonce)
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
        _context(request).csrf_key,
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
    guard = _context(request).guard
    words = texts(_language(request))
    try:
        if step == "send_code":
            admission = _admit(request, portal_slug, form.get("phone", ""), phone_only=True)
            if admission.refusal is not None:
                error = _refusal_text(request, admission.refusal, admission.retry_after)
                return _page(request, portal_slug, "signin", form, error=error, step="code",
                             status_code=429)  # fmt: skip
            background.add_task(_send_later, request, admission, credentials.send_sign_in_code)
            return _page(request, portal_slug, "signin", form, notice=words["code_sent"],
                         step="code")  # fmt: skip
        with request.app.state.session_factory() as session:
            if step == "code":
                answer = credentials.sign_in_with_code(
                    session, guard, portal_slug=portal_slug, phone=form.get("phone", ""),
                    code=form.get("code", ""), client_ip=_client(request),
                    user_agent=_user_agent(request),
                )  # fmt: skip
            else:
                answer = credentials.sign_in_with_password(
                    session, guard, portal_slug=portal_slug, login=form.get("login", ""),
                    password=form.get("password", ""), client_ip=_client(request),
                    user_agent=_user_agent(request),
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
        admission = _admit(request, portal_slug, form.get("login", ""), phone_only=False)
    except NotFound:
        return _message(request, "no_portal", 404)
    except InvalidInput:
        words = texts(_language(request))
        return _page(request, portal_slug, "forgot", form, error=words["invalid_login"],
                     status_code=422)  # fmt: skip
    if admission.refusal is not None:
        error = _refusal_text(request, admission.refusal, admission.retry_after)
        return _page(request, portal_slug, "forgot", form, error=error, status_code=429)
    background.add_task(_send_later, request, admission, reset.send_reset)
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
        return _message(request, f"reset_{problem}", _LINK_PROBLEM_STATUS.get(problem, 404),
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
                _context(request).guard,
                token=token,
                password=password,
                client_ip=_client(request),
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
