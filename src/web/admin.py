"""The admin API: bulk invite, reinvite, transfer, and reading runs and failure reports.

The same pipelines as the CLI, behind the same per-org API keys as ``POST /events``: the
org is always the key's, so another org's run or user type is answered 404. Handlers parse
and hand a submission to :mod:`portalflow.workers.submit` (record, commit, then enqueue).

Every POST honours an ``Idempotency-Key`` header (:mod:`portalflow.pipelines.tenancy.idempotency`):
the same key and body again get the first answer (status and body, header
``Idempotent-Replayed: true``) and start nothing; the same key with another body is a 409
``idempotency_key_reused``. Keys are per org and kept 24 hours.

Tests may set ``app.state.enqueue_invite_chunks`` / ``app.state.enqueue_action_chunks``
(callables taking a list of chunk ids); by default the Dramatiq actors are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from portalflow.events import MAX_CRM_IDS, CrmId, Id, RequestModel, renamed_fields
from portalflow.models import BulkAction, RefusalCode
from portalflow.pipelines.errors import PortalflowError
from portalflow.pipelines.invitations.bulk import StartedRun
from portalflow.pipelines.ops import failure_reports, reports
from portalflow.pipelines.tenancy import idempotency
from portalflow.pipelines.users import lifecycle, transfers
from portalflow.pipelines.users.lifecycle import UserFilter
from portalflow.workers import enqueue, submit

from .events import OrgId, problem

router = APIRouter(prefix="/admin", tags=["admin"])
Result = TypeVar("Result")

Language = Annotated[str, Field(min_length=2, max_length=8)]
UserIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_CRM_IDS)]


class _Body(RequestModel):
    model_config = ConfigDict(extra="forbid")


class InviteRequest(_Body):
    # As in the events: ``record_ids``; the older ``crm_ids`` is accepted for one release.
    _renamed = model_validator(mode="before")(renamed_fields)

    user_type_id: Id
    inviter_id: Id
    record_ids: Annotated[list[CrmId], Field(min_length=1, max_length=MAX_CRM_IDS)] | None = Field(
        None, description="The CRM ids of the records to invite."
    )
    crm_ids: list[CrmId] | None = Field(
        None, deprecated=True, description="Deprecated: the old name of `record_ids`."
    )
    all: bool = Field(False, description="Invite every uninvited record of the type's module.")
    language: Language = "en"

    @model_validator(mode="after")
    def _one_target(self) -> InviteRequest:
        if (self.record_ids is None) == (not self.all):
            raise ValueError("give record_ids, or all=true, not both")
        return self


class ReinviteRequest(_Body):
    user_type_id: Id
    actor_id: Id
    filter: UserFilter | None = None
    user_ids: UserIds | None = None
    language: Language = "en"

    @model_validator(mode="after")
    def _one_target(self) -> ReinviteRequest:
        if self.filter is not None and self.user_ids is not None:
            raise ValueError("give user_ids, or a filter, not both")
        return self


class TransferRequest(_Body):
    to_user_type_id: Id
    user_ids: UserIds | None = None
    from_user_type_id: Id | None = None
    filter: UserFilter | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        if (self.user_ids is None) == (self.from_user_type_id is None):
            raise ValueError("give user_ids, or from_user_type_id (with a filter), not both")
        if self.user_ids is not None and self.filter is not None:
            raise ValueError("a filter needs from_user_type_id, not user_ids")
        return self


class StartedRunAnswer(BaseModel):
    run_id: int
    requested: int
    chunks: int


class Refusal(BaseModel):
    user_id: int
    code: RefusalCode
    reason: str


class TransferAnswer(BaseModel):
    to_user_type_id: int
    moved: list[int]
    refused: list[Refusal]


# What every idempotent POST may answer besides its own result.
KEY_REUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "The Idempotency-Key was used for another request."}
}


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=idempotency.MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry safely: the same key and body get the first answer again.",
    ),
]

REPLAYED = {"Idempotent-Replayed": "true"}


def _enqueuer(request: Request, name: str, default: submit.SendIds) -> submit.SendIds:
    return getattr(request.app.state, name, None) or default


def _started(started: StartedRun) -> StartedRunAnswer:
    return StartedRunAnswer(
        run_id=started.run_id, requested=started.requested, chunks=len(started.chunk_ids)
    )


def _once(
    request: Request,
    org_id: int,
    key: str | None,
    body: BaseModel,
    status_code: int,
    submission: submit.Submission[Result],
    answer: Callable[[Result], BaseModel],
) -> Any:
    """Carry out ``submission`` (record, commit, enqueue), or replay the answer under ``key``."""
    try:
        with request.app.state.session_factory() as session:
            if key is None:
                return answer(submit.submit(session, submission))
            fingerprint = idempotency.request_hash(
                request.method, request.url.path, body.model_dump(mode="json")
            )
            once = submit.Once(org_id, key, fingerprint, status_code)
            done = submit.submit_once(
                session, submission, once, lambda result: answer(result).model_dump(mode="json")
            )
    except PortalflowError as exc:
        raise problem(exc) from None
    if isinstance(done, submit.Replayed):
        return JSONResponse(done.body, done.status_code, headers=REPLAYED)
    return answer(done)


@router.post(
    "/invitations",
    status_code=202,
    response_model=StartedRunAnswer,
    responses=KEY_REUSED,
)
def invite(request: Request, org_id: OrgId, body: InviteRequest, key: IdempotencyKey = None) -> Any:
    """Bulk invite records (``record_ids``, or ``all`` uninvited ones) to a user type."""
    started = submit.invite(
        send=_enqueuer(request, "enqueue_invite_chunks", enqueue.enqueue_chunks),
        org_id=org_id,
        user_type_id=body.user_type_id,
        inviter_id=body.inviter_id,
        crm_ids=None if body.all else body.record_ids,
        language=body.language,
    )
    return _once(request, org_id, key, body, 202, started, _started)


@router.post(
    "/users/reinvite",
    status_code=202,
    response_model=StartedRunAnswer,
    responses=KEY_REUSED,
)
def reinvite(
    request: Request, org_id: OrgId, body: ReinviteRequest, key: IdempotencyKey = None
) -> Any:
    """Reinvite a user type's users: by ``user_ids``, or everyone a ``filter`` shows."""
    started = submit.user_action(
        send=_enqueuer(request, "enqueue_action_chunks", enqueue.enqueue_action_chunks),
        org_id=org_id,
        user_type_id=body.user_type_id,
        actor_id=body.actor_id,
        action=BulkAction.REINVITE,
        user_ids=body.user_ids,
        user_filter=body.filter or UserFilter.ALL,
        language=body.language,
    )
    return _once(request, org_id, key, body, 202, started, _started)


@router.post(
    "/users/transfer",
    response_model=TransferAnswer,
    responses=KEY_REUSED,
)
def transfer(
    request: Request, org_id: OrgId, body: TransferRequest, key: IdempotencyKey = None
) -> Any:
    """Move users to another user type of the org, keeping their status (done at once)."""

    def move(session: Session) -> transfers.TransferResult:
        ids = lifecycle.selected_users(
            session, org_id, body.user_ids, body.from_user_type_id, body.filter
        )
        return transfers.transfer_users(session, org_id, ids, body.to_user_type_id)

    def answer(result: transfers.TransferResult) -> TransferAnswer:
        return TransferAnswer(
            to_user_type_id=body.to_user_type_id,
            moved=result.moved,
            refused=[
                Refusal(user_id=uid, code=why.code, reason=why.detail)
                for uid, why in result.refused.items()
            ],
        )

    return _once(request, org_id, key, body, 200, submit.done_at_once(move), answer)


@router.get("/bulk-runs/{run_id}")
def bulk_run(request: Request, org_id: OrgId, run_id: Id) -> dict[str, Any]:
    """A run's totals and its failed invitees with their reasons."""
    with request.app.state.session_factory() as session:
        try:
            return reports.bulk_run_report(session, run_id, org_id=org_id)
        except PortalflowError as exc:
            raise problem(exc) from None


def failure_options(
    bulk_run_id: Id | None = None,
    user_type_id: Id | None = None,
    since: datetime | None = None,
    include_resolved: bool = False,
) -> dict[str, Any]:
    """The failure report's query parameters, shared by both endpoints that serve it."""
    return {
        "bulk_run_id": bulk_run_id,
        "user_type_id": user_type_id,
        "since": since,
        "include_resolved": include_resolved,
    }


FailureOptions = Annotated[dict[str, Any], Depends(failure_options)]


@router.get("/failures")
def failures(
    request: Request,
    org_id: OrgId,
    options: FailureOptions,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Who failed and why, now (as `portalflow failures`): counts by reason, outcome and type.

    Failures resolved since (invited again, or the user is now confirmed) are only counted
    in ``resolved`` unless ``include_resolved``.
    """
    return failure_report(request, failure_reports.FailureFilter(org_id=org_id, **options), limit)


def failure_report(
    request: Request, query: failure_reports.FailureFilter, limit: int
) -> dict[str, Any]:
    """The failure report for an org, its refusals as HTTP errors; shared with /orgs/.../."""
    with request.app.state.session_factory() as session:
        try:
            return failure_reports.failure_report(session, query, limit=limit)
        except PortalflowError as exc:
            raise problem(exc) from None
