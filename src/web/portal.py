"""What a portal user's link calls: accept an invitation, confirm a changed email address.

The handlers only call :mod:`portalflow.pipelines.invitations.acceptance` and commit. A token that
cannot be used is a 400 problem+json, code ``invalid_token``, whose ``problem`` says why
(unknown, used, expired, superseded, not_sent, wrong_kind); a bad password or locale is a
422; a user whose status does not allow the step (removed in the meantime, say) is a 409.
Both count against the link rate limits of :mod:`.portal_links` (429 with ``Retry-After``
over them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from portalflow.events import RequestModel
from portalflow.models import PortalUser, ProblemCode
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.invitations import acceptance
from portalflow.pipelines.users.lifecycle import InvalidTransition

from . import portal_links
from .problems import problem_response

router = APIRouter(prefix="/portal", tags=["portal"])


class AcceptRequest(RequestModel):
    token: str = Field(max_length=200)
    password: str = Field(repr=False)
    language: str | None = None
    time_zone: str | None = None
    time_format: str | None = None
    country: str | None = None


class ConfirmEmailRequest(RequestModel):
    token: str = Field(max_length=200)


class PortalUserAnswer(BaseModel):
    portal_user_id: int
    status: str


def _run(request: Request, token: str, step: Callable[[Session], PortalUser]) -> Any:
    wait = portal_links.retry_after(request, token)
    if wait is not None:
        return problem_response(
            429,
            ProblemCode.RATE_LIMITED,
            "too many requests; try again later",
            headers={"Retry-After": str(wait)},
            problem=ProblemCode.RATE_LIMITED.value,
        )
    with request.app.state.session_factory() as session:
        try:
            user = step(session)
            answer = PortalUserAnswer(portal_user_id=user.id, status=user.status.value)
            session.commit()
        except acceptance.AcceptanceError as exc:
            session.rollback()
            return problem_response(
                400, ProblemCode.INVALID_TOKEN, str(exc), problem=exc.problem.value
            )
        except InvalidTransition as exc:
            session.rollback()
            code = ProblemCode.INVALID_TRANSITION
            return problem_response(409, code, str(exc), problem=code.value)
        except InvalidInput as exc:
            session.rollback()
            code = ProblemCode.INVALID_INPUT.value
            return problem_response(422, code, str(exc), problem=code)
    return answer


@router.post("/accept", response_model=PortalUserAnswer)
def accept(request: Request, body: AcceptRequest) -> Any:
    """Accept an invitation: set the password (and locale); the user is confirmed."""
    return _run(
        request,
        body.token,
        lambda session: acceptance.accept_invitation(
            session,
            body.token,
            password=body.password,
            language=body.language,
            time_zone=body.time_zone,
            time_format=body.time_format,
            country=body.country,
        ),
    )


@router.post("/confirm-email", response_model=PortalUserAnswer)
def confirm_email(request: Request, body: ConfirmEmailRequest) -> Any:
    """Confirm a changed email address; access is restored with the existing password."""
    return _run(request, body.token, lambda session: acceptance.confirm_email(session, body.token))
