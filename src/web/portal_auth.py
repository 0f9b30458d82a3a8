"""The portal user's session over HTTP: where its token travels, and the check of it.

A session token travels as ``Authorization: Bearer <token>`` (API clients) or in the
``portalflow_session`` cookie (the browser pages): HttpOnly, SameSite=Lax, Secure over
HTTPS. Routes that need a signed-in portal user declare the dependency::

    @router.get("/portal/me/records")
    def records(user: Annotated[PortalPrincipal, Depends(current_portal_user)]) -> ...:
        ...  # user.portal_user_id, user.org_id

Without a live session the answer is 401 problem+json, code ``unauthorized``, whose
``problem`` says why (``no_session``, ``session_expired``, ``session_ended``). The check is
:func:`portalflow.pipelines.signin.sessions.check_session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from portalflow.models import SIGN_IN_REFUSAL_DESCRIPTIONS
from portalflow.pipelines.signin import sessions

from .problems import ApiProblem, ProblemCode

SESSION_COOKIE = "portalflow_session"
BEARER = "bearer "


@dataclass(frozen=True)
class PortalPrincipal:
    """The signed-in portal user of a request."""

    portal_user_id: int
    org_id: int
    session_id: int
    expires_at: datetime


def session_token(request: Request) -> str | None:
    """The request's session token: the bearer token, else the session cookie.

    A request with an Authorization header is judged by it alone (a malformed one is no
    session), never by a cookie the browser may also send.
    """
    header = request.headers.get("authorization")
    if header is not None:
        if header.lower().startswith(BEARER):
            return header[len(BEARER) :].strip() or None
        return None
    return request.cookies.get(SESSION_COOKIE) or None


def check_request(request: Request) -> sessions.SessionCheck:
    """Who the request's session signs in, or why it does not (commits the last use)."""
    with request.app.state.session_factory() as session:
        checked = sessions.check_session(session, session_token(request))
        session.commit()
    return checked


async def current_portal_user(request: Request) -> PortalPrincipal:
    """The FastAPI dependency: the signed-in portal user, or 401 with the reason."""
    checked = await run_in_threadpool(check_request, request)
    if checked.refusal is not None:
        raise ApiProblem(
            401,
            SIGN_IN_REFUSAL_DESCRIPTIONS[checked.refusal],
            ProblemCode.UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="portal"'},
            problem=checked.refusal.value,
        )
    assert checked.session_id is not None and checked.portal_user_id is not None
    assert checked.org_id is not None and checked.expires_at is not None
    return PortalPrincipal(
        checked.portal_user_id, checked.org_id, checked.session_id, checked.expires_at
    )


def set_session_cookie(
    response: Response, request: Request, token: str, expires_at: datetime
) -> None:
    """Hand the browser its session: HttpOnly, SameSite=Lax, Secure over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        expires=expires_at,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
