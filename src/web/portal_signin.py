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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.events import RequestModel
from portalflow.models import SIGN_IN_REFUSAL_DESCRIPTIONS, SignInRefusal
from portalflow.pipelines.invitations.link_keys import link_key
from portalflow.pipelines.signin import credentials, reset, sessions
from portalflow.pipelines.signin.credentials import MessageAdmission, MessageRequest
from portalflow.pipelines.signin.guard import SignInGuard
from portalflow.workers import submit

from . import csrf, portal_auth
from .client_ip import client_ip
from .portal_auth import PortalPrincipal, current_portal_user
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
LINK_PROBLEM_STATUS = {"unknown": 404, "used": 410, "expired": 410, "superseded": 410}


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


def signin_context(request: Request) -> SignInContext:
    return request.app.state.signin  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    return client_ip(peer, forwarded, signin_context(request).trusted_proxies) or "unknown"


def user_agent(request: Request) -> str | None:
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


def send_later(
    request: Request,
    admission: MessageAdmission,
    send: Callable[[Session, MessageAdmission], MessageRequest],
) -> None:
    """Decide who gets the message, write it, commit, enqueue: after the answer went out."""
    state = request.app.state
    message = submit.sign_in_message(admission, send, send=state.enqueue_dispatch)
    try:
        with state.session_factory() as session:
            submit.submit(session, message)
    except Exception:  # the requester was answered already; the rows recover the rest
        log.exception("a sign-in message could not be queued")


def admit(request: Request, portal: str, login: str, phone_only: bool) -> MessageAdmission:
    with request.app.state.session_factory() as session:
        return credentials.admit_message_request(
            session,
            signin_context(request).guard,
            portal_slug=portal,
            login=login,
            client_ip=client_address(request),
            phone_only=phone_only,
        )


router = APIRouter(prefix="/portal", tags=["portal"])


@router.post("/login", response_model=SessionAnswer)
def login(request: Request, body: LoginRequest) -> Any:
    """Sign in: email and password, or phone and a code (or password); opens a session."""
    guard = signin_context(request).guard
    with request.app.state.session_factory() as session:
        if body.code is not None:
            assert body.phone is not None
            answer = credentials.sign_in_with_code(
                session, guard, portal_slug=body.portal, phone=body.phone, code=body.code,
                client_ip=client_address(request), user_agent=user_agent(request),
            )  # fmt: skip
        else:
            assert body.password is not None
            answer = credentials.sign_in_with_password(
                session, guard, portal_slug=body.portal, login=body.email or body.phone or "",
                password=body.password, client_ip=client_address(request),
                user_agent=user_agent(request),
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
    admission = admit(request, body.portal, body.phone, phone_only=True)
    if admission.refusal is not None:
        return _refused(admission.refusal, admission.retry_after)
    background.add_task(send_later, request, admission, credentials.send_sign_in_code)
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
    admission = admit(request, body.portal, body.email or body.phone or "", phone_only=False)
    if admission.refusal is not None:
        return _refused(admission.refusal, admission.retry_after)
    background.add_task(send_later, request, admission, reset.send_reset)
    return AcceptedAnswer(detail=MessageRequest(None).detail)


@router.post("/password/reset", response_model=ResetAnswer)
def reset_password(request: Request, body: ResetRequest) -> Any:
    """Set a new password with a reset token; every session of the user ends."""
    with request.app.state.session_factory() as session:
        answer = reset.reset_password(
            session,
            signin_context(request).guard,
            token=body.token,
            password=body.password,
            client_ip=client_address(request),
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
