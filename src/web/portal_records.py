"""The signed-in portal user's records: ``/portal/me/records``.

``build_portal_records_router(current_user=...)`` takes the sign-in's FastAPI dependency
(it answers 401 itself when nobody is signed in) and returns the router. The dependency's
value must have ``portal_user_id`` and ``org_id`` (see :class:`SignedIn`).

- ``GET /portal/me/records?module=M&after=&limit=`` a keyset page, fields filtered;
- ``GET /portal/me/records/{module}/{id}`` one record by its CRM id;
- ``POST /portal/me/records/{module}``, ``PATCH`` and ``DELETE .../{module}/{id}``: writes,
  only where the permissions allow. Bodies are JSON only, which a cross-site form cannot
  send without a CORS preflight.

A record that does not exist and one the rules do not show are answered alike (404), so
the answers do not reveal what exists. Other refusals are 403 (422 for a bad value); each
problem carries ``reason``, an :class:`~portalflow.models.AccessCode`.
"""

# No ``from __future__ import annotations``: the routes are built in a function, and FastAPI
# must see their dependency (a local) in evaluated annotations.

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from portalflow.events import MAX_ID, RequestModel
from portalflow.models import AccessCode
from portalflow.pipelines.access import records
from portalflow.pipelines.access.problems import AccessRefused
from portalflow.pipelines.errors import PortalflowError

from .events import problem
from .problems import ApiProblem, ProblemCode

# How each refusal is answered: (HTTP status, problem code).
REFUSAL_STATUS: dict[AccessCode, tuple[int, ProblemCode]] = {
    AccessCode.RECORD_NOT_VISIBLE: (404, ProblemCode.NOT_FOUND),
    AccessCode.MODULE_NOT_EXPOSED: (403, ProblemCode.FORBIDDEN),
    AccessCode.USER_NOT_ACTIVE: (403, ProblemCode.FORBIDDEN),
    AccessCode.ACTION_NOT_PERMITTED: (403, ProblemCode.FORBIDDEN),
    AccessCode.FIELD_NOT_EDITABLE: (403, ProblemCode.FORBIDDEN),
    AccessCode.INVALID_VALUE: (422, ProblemCode.INVALID_INPUT),
}

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
ModuleName = Annotated[str, Path(min_length=1, max_length=100, pattern=PRINTABLE)]
CrmId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE)]


class SignedIn(Protocol):
    """What the sign-in dependency returns."""

    portal_user_id: int
    org_id: int


class ValuesRequest(RequestModel):
    """Field values to write."""

    values: dict[str, Any] = Field(description="Field name -> new value.", max_length=500)


def build_portal_records_router(current_user: Callable[..., Any]) -> APIRouter:
    """The portal user's record routes, signed in through ``current_user``."""
    router = APIRouter(prefix="/portal/me/records", tags=["portal records"])
    _add_reads(router, current_user)
    _add_writes(router, current_user)
    return router


def _add_reads(router: APIRouter, current_user: Callable[..., Any]) -> None:
    User = Annotated[SignedIn, Depends(current_user)]

    @router.get("")
    def portal_list_records(
        request: Request,
        user: User,
        module: Annotated[str, Query(min_length=1, max_length=100, pattern=PRINTABLE)],
        after: Annotated[
            int | None, Query(ge=0, le=MAX_ID, description="next_after of the last page.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=records.MAX_PAGE)] = records.DEFAULT_PAGE,
    ) -> dict[str, Any]:
        """A page of the module's records the user may see, with the fields they may see."""
        return _run(
            request,
            lambda s: records.list_records(
                s, user.portal_user_id, module, after=after, limit=limit, org_id=user.org_id
            ).as_dict(),
            commit=False,
        )

    @router.get("/{module}/{crm_id}")
    def portal_get_record(
        request: Request, user: User, module: ModuleName, crm_id: CrmId
    ) -> dict[str, Any]:
        """One record the user may see."""
        return _run(
            request,
            lambda s: records.get_record(
                s, user.portal_user_id, module, crm_id, org_id=user.org_id
            ).as_dict(),
            commit=False,
        )


def _add_writes(router: APIRouter, current_user: Callable[..., Any]) -> None:
    User = Annotated[SignedIn, Depends(current_user)]

    @router.post("/{module}", status_code=201)
    def portal_create_record(
        request: Request, user: User, module: ModuleName, body: ValuesRequest
    ) -> dict[str, Any]:
        """Create a record, linked to the user; ``record`` is null if the rules hide it."""

        def work(s: Session) -> dict[str, Any]:
            crm_id, seen = records.create_record(
                s, user.portal_user_id, module, body.values, org_id=user.org_id
            )
            return {"id": crm_id, "record": seen.as_dict() if seen else None}

        return _run(request, work)

    @router.patch("/{module}/{crm_id}")
    def portal_update_record(
        request: Request, user: User, module: ModuleName, crm_id: CrmId, body: ValuesRequest
    ) -> dict[str, Any]:
        """Change fields of a record the user may edit."""
        return _run(
            request,
            lambda s: records.update_record(
                s, user.portal_user_id, module, crm_id, body.values, org_id=user.org_id
            ).as_dict(),
        )

    @router.delete("/{module}/{crm_id}", status_code=204)
    def portal_delete_record(
        request: Request, user: User, module: ModuleName, crm_id: CrmId
    ) -> Response:
        """Move a record the user may delete to the recycle bin."""
        _run(
            request,
            lambda s: records.delete_record(
                s, user.portal_user_id, module, crm_id, org_id=user.org_id
            ),
        )
        return Response(status_code=204)


def _run(request: Request, work: Callable[[Session], Any], *, commit: bool = True) -> Any:
    with request.app.state.session_factory() as session:
        try:
            answer = work(session)
        except AccessRefused as exc:
            status, code = REFUSAL_STATUS.get(exc.refusal.code, (403, ProblemCode.FORBIDDEN))
            raise ApiProblem(
                status, exc.refusal.detail, code, reason=exc.refusal.code.value
            ) from None
        except PortalflowError as exc:
            raise problem(exc) from None
        if commit:
            session.commit()
    return answer
