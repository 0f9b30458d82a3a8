"""The admin API of portal access: field catalogues, exposures, permission sets, explain.

Behind the same per-org API keys as the rest of ``/admin``: the org is always the key's.
A definition is checked when saved; a refusal is a 422 problem whose ``problems`` member
lists each one with its stable ``code`` (:class:`~portalflow.models.AccessCode`), where it
is (``rule.any[1]``) and what is wrong; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portalflow.events import MAX_ID, Id, RequestModel
from portalflow.pipelines.access import catalogue, compiler, config, explain
from portalflow.pipelines.access.problems import AccessInvalid
from portalflow.pipelines.errors import PortalflowError

from .events import OrgId, problem
from .problems import ApiProblem, ProblemCode

router = APIRouter(prefix="/admin/access", tags=["access"])

# Printable text only: a NUL or a control character can name no module, set or record.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
ModuleName = Annotated[str, Path(min_length=1, max_length=100, pattern=PRINTABLE)]
SetName = Annotated[str, Path(min_length=1, max_length=100, pattern=PRINTABLE)]

REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "Refused: `problems` lists each problem with its code and place."}
}


class FieldsRequest(RequestModel):
    """A module's whole field catalogue."""

    fields: list[dict[str, Any]] = Field(
        description="The module's fields: name, type, and options / lookup_module / pii / ephi."
    )


class ExposureRequest(RequestModel):
    """How a user type exposes a module."""

    public: bool = Field(False, description="Every record (or those the rule keeps), view only.")
    rule: dict[str, Any] | None = Field(
        None, description="Lookup links and criteria; see the README's rule syntax."
    )
    permissions: dict[str, bool] = Field(
        default_factory=dict, description="Any of create, view, edit, edit_shared, delete."
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="Field name -> visible, read_only or hidden."
    )


class PermissionSetRequest(RequestModel):
    """A permission set of one user type."""

    user_type_id: Id
    show_pii: bool = False
    show_ephi: bool = False
    modules: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Module -> overrides: create/view/edit/edit_shared/delete and fields.",
    )


class AssignmentRequest(RequestModel):
    """Who holds which permission set."""

    permission_set: str | None = Field(
        description="The set's name; null gives the users back their type's defaults."
    )
    user_ids: Annotated[list[Id], Field(min_length=1, max_length=10_000)]


def _run(request: Request, work: Callable[[Session], Any]) -> Any:
    """Run ``work`` in a session and commit; refusals become problem answers."""
    with request.app.state.session_factory() as session:
        try:
            answer = work(session)
            session.commit()
        except AccessInvalid as exc:
            raise ApiProblem(
                422,
                str(exc),
                ProblemCode.INVALID_INPUT,
                problems=[p.as_dict() for p in exc.problems],
            ) from None
        except PortalflowError as exc:
            raise problem(exc) from None
        except IntegrityError:
            # Two saves of one definition at once: the unique constraint let one win.
            raise ApiProblem(
                409, "a concurrent change of the same definition won; read it and retry"
            ) from None
    return answer


@router.put("/modules/{module}/fields", responses=REFUSED)
def define_module_fields(
    request: Request, org_id: OrgId, module: ModuleName, body: FieldsRequest
) -> dict[str, Any]:
    """Replace a module's field catalogue (refused if a saved rule would break)."""

    def work(session: Session) -> dict[str, Any]:
        specs = config.define_fields(session, org_id, module, body.fields)
        return {"module": module, "fields": [s.as_dict() for s in specs]}

    return _run(request, work)


@router.get("/modules")
def list_module_fields(
    request: Request,
    org_id: OrgId,
    module: Annotated[str | None, Query(min_length=1, max_length=100, pattern=PRINTABLE)] = None,
) -> dict[str, Any]:
    """The org's field catalogues (or one module's)."""
    return _run(request, lambda session: catalogue.catalogue_view(session, org_id, module))


@router.put("/user-types/{user_type_id}/modules/{module}", responses=REFUSED)
def expose_module(
    request: Request, org_id: OrgId, user_type_id: Id, module: ModuleName, body: ExposureRequest
) -> dict[str, Any]:
    """Expose a module to a user type, or replace how it is exposed."""

    def work(session: Session) -> dict[str, Any]:
        exposure = config.expose_module(
            session,
            org_id,
            user_type_id,
            module,
            public=body.public,
            rule=body.rule,
            permissions=body.permissions,
            fields=body.fields,
        )
        return config.exposure_view(exposure) | {
            "indexes": compiler.index_statements(module, exposure.rule)
        }

    return _run(request, work)


@router.delete("/user-types/{user_type_id}/modules/{module}", status_code=204)
def unexpose_module(
    request: Request, org_id: OrgId, user_type_id: Id, module: ModuleName
) -> Response:
    """Stop exposing a module to a user type."""

    def work(session: Session) -> None:
        if not config.unexpose_module(session, org_id, user_type_id, module):
            raise ApiProblem(404, f"{module} is not exposed to user type {user_type_id}")

    _run(request, work)
    return Response(status_code=204)


@router.get("/user-types/{user_type_id}")
def show_user_type_access(request: Request, org_id: OrgId, user_type_id: Id) -> dict[str, Any]:
    """A user type's modules, rules (also in words), permissions and permission sets."""
    return _run(request, lambda session: config.show_user_type(session, org_id, user_type_id))


@router.put("/permission-sets/{name}", responses=REFUSED)
def define_permission_set(
    request: Request, org_id: OrgId, name: SetName, body: PermissionSetRequest
) -> dict[str, Any]:
    """Create or replace a permission set."""

    def work(session: Session) -> dict[str, Any]:
        row = config.define_permission_set(
            session,
            org_id,
            body.user_type_id,
            name,
            show_pii=body.show_pii,
            show_ephi=body.show_ephi,
            modules=body.modules,
        )
        return config.permission_set_view(row)

    return _run(request, work)


@router.delete("/permission-sets/{name}")
def delete_permission_set(request: Request, org_id: OrgId, name: SetName) -> dict[str, Any]:
    """Delete a permission set; its users fall back to their type's defaults."""
    held = _run(request, lambda session: config.delete_permission_set(session, org_id, name))
    return {"name": name, "users_released": held}


@router.post("/assignments", responses=REFUSED)
def assign_permission_set(
    request: Request, org_id: OrgId, body: AssignmentRequest
) -> dict[str, Any]:
    """Give portal users a permission set (or, with null, their type's defaults)."""
    count = _run(
        request,
        lambda session: config.assign_permission_set(
            session, org_id, list(body.user_ids), body.permission_set
        ),
    )
    return {"permission_set": body.permission_set, "users": count}


@router.get("/explain")
def explain_record_visibility(
    request: Request,
    org_id: OrgId,
    user: Annotated[int, Query(ge=1, le=MAX_ID, description="The portal user id.")],
    module: Annotated[str, Query(min_length=1, max_length=100, pattern=PRINTABLE)],
    record: Annotated[
        str, Query(min_length=1, max_length=64, pattern=PRINTABLE, description="The CRM id.")
    ],
) -> dict[str, Any]:
    """Whether a record is visible to a portal user, which rule decided, and why."""
    return _run(
        request,
        lambda session: explain.explain(session, user, module, record, org_id=org_id).as_dict(),
    )
