"""Permission sets: named profiles of one user type, and who holds which.

A set overrides the type's defaults per module (any of create/view/edit/edit_shared/delete
and field access); what it leaves out keeps them. PII/ePHI fields stay hidden unless the
set has ``show_pii`` / ``show_ephi``. A user holds at most one set, of their own type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portalflow.models import (
    AccessCode,
    FieldAccess,
    ModuleExposure,
    ModuleRole,
    PermissionSet,
    PermissionSetAssignment,
    PortalUser,
    PortalUserType,
)

from ..errors import NotFound
from .catalogue import Catalogue, load_catalogue
from .exposures import (
    ACTIONS,
    exposed_roles,
    field_levels,
    get_user_type,
    parse_permissions,
    permission_problems,
)
from .problems import AccessInvalid, Problem, raise_if_any

SET_NAME = re.compile(r"^\S(.{0,98}\S)?$")
# The tables that configure one user type: deleted with it, never moved to another.
USER_TYPE_TABLES = (ModuleExposure.__tablename__, PermissionSet.__tablename__)
_SET_MODULE_KEYS = frozenset({*(a.value for a in ACTIONS), "fields"})


def define_permission_set(
    session: Session,
    org_id: int,
    user_type_id: int,
    name: str,
    *,
    show_pii: bool = False,
    show_ephi: bool = False,
    modules: Mapping[str, Any] | None = None,
) -> PermissionSet:
    """Create or replace the named set (names are unique per org; flushed, not committed).

    ``modules`` maps a module of the type to overrides: any of create/view/edit/
    edit_shared/delete and ``fields`` (field name -> visible/read_only/hidden).
    """
    user_type = get_user_type(session, org_id, user_type_id)
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise_if_any(
            [Problem(AccessCode.INVALID_VALUE, "name", "a set name is 1 to 100 characters")]
        )
    catalogue = load_catalogue(session, org_id)
    roles = exposed_roles(session, user_type, catalogue)
    stored = check_set_modules(
        catalogue, user_type, roles, modules or {}, show_pii, show_ephi, where="modules"
    )
    row = session.scalar(
        select(PermissionSet).where(PermissionSet.org_id == org_id, PermissionSet.name == name)
    )
    if row is not None and row.user_type_id != user_type.id:
        raise_if_any(
            [
                Problem(
                    AccessCode.SET_OF_OTHER_TYPE,
                    "name",
                    f"permission set {name!r} already belongs to another user type "
                    f"(id {row.user_type_id}); set names are unique per org",
                )
            ]
        )
    if row is None:
        row = PermissionSet(org_id=org_id, user_type_id=user_type.id, name=name)
        session.add(row)
    row.show_pii = show_pii
    row.show_ephi = show_ephi
    row.modules = stored
    session.flush()
    return row


def check_set_modules(
    catalogue: Catalogue,
    user_type: PortalUserType,
    roles: Mapping[str, ModuleRole],
    modules: Mapping[str, Any],
    show_pii: bool,
    show_ephi: bool,
    *,
    where: str,
) -> dict[str, Any]:
    """The set's overrides checked and normalised; raises ``AccessInvalid`` if wrong."""
    problems: list[Problem] = []
    stored: dict[str, Any] = {}
    if not isinstance(modules, Mapping):
        raise_if_any(
            [Problem(AccessCode.INVALID_RULE, where, "modules map module names to overrides")]
        )
    for module, overrides in modules.items():
        here = f"{where}.{module}"
        role = roles.get(module)
        if role is None:
            problems.append(_not_exposed(catalogue, user_type, module, here))
            continue
        if not isinstance(overrides, Mapping) or set(overrides) - _SET_MODULE_KEYS:
            problems.append(
                Problem(
                    AccessCode.INVALID_RULE,
                    here,
                    f"overrides of a module take {', '.join(sorted(_SET_MODULE_KEYS))}",
                )
            )
            continue
        try:
            perms = parse_permissions({k: v for k, v in overrides.items() if k != "fields"}, here)
        except AccessInvalid as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(permission_problems(role, module, perms, here))
        levels = field_levels(
            catalogue, module, overrides.get("fields", {}), f"{here}.fields", problems
        )
        problems.extend(
            _hidden_shown(catalogue, module, levels, show_pii, show_ephi, f"{here}.fields")
        )
        entry: dict[str, Any] = {a.value: v for a, v in perms.items()}
        if levels:
            entry["fields"] = {n: level.value for n, level in levels.items()}
        stored[module] = entry
    raise_if_any(problems)
    return stored


def _not_exposed(
    catalogue: Catalogue, user_type: PortalUserType, module: str, where: str
) -> Problem:
    return catalogue.module_problem(module, where) or Problem(
        AccessCode.MODULE_NOT_EXPOSED,
        where,
        f"{module} is not exposed to user type {user_type.name}; expose it first",
    )


def _hidden_shown(
    catalogue: Catalogue,
    module: str,
    levels: Mapping[str, FieldAccess],
    show_pii: bool,
    show_ephi: bool,
    where: str,
) -> list[Problem]:
    """PII/ePHI fields a set would show while it hides that kind of field."""
    problems = []
    for name, level in levels.items():
        spec = catalogue.field(module, name)
        assert spec is not None
        hidden_pii = spec.pii and not show_pii
        hidden_ephi = spec.ephi and not show_ephi
        if (hidden_pii or hidden_ephi) and level is not FieldAccess.HIDDEN:
            flag = "show_pii" if hidden_pii else "show_ephi"
            problems.append(
                Problem(
                    AccessCode.PII_HIDDEN,
                    f"{where}.{name}",
                    f"{module}.{name} holds {'PII' if hidden_pii else 'ePHI'} and the set "
                    f"hides those: turn on {flag} to show it",
                )
            )
    return problems


def delete_permission_set(session: Session, org_id: int, name: str) -> int:
    """Delete the named set and its assignments; returns how many users held it."""
    row = get_permission_set(session, org_id, name)
    held = session.execute(
        delete(PermissionSetAssignment).where(PermissionSetAssignment.permission_set_id == row.id)
    ).rowcount
    session.delete(row)
    session.flush()
    return held


def assign_permission_set(
    session: Session, org_id: int, portal_user_ids: list[int], name: str | None
) -> int:
    """Give the users the named set (``None``: back to their type's defaults); returns count."""
    users = {
        u.id: u
        for u in session.scalars(
            select(PortalUser).where(
                PortalUser.org_id == org_id, PortalUser.id.in_(portal_user_ids)
            )
        )
    }
    missing = sorted(set(portal_user_ids) - set(users))
    if missing:
        raise NotFound(
            f"portal user(s) {', '.join(map(str, missing))} do not exist in org {org_id}"
        )
    session.execute(
        delete(PermissionSetAssignment).where(
            PermissionSetAssignment.portal_user_id.in_(list(users))
        )
    )
    if name is None:
        session.flush()
        return len(users)
    pset = get_permission_set(session, org_id, name)
    others = sorted(uid for uid, u in users.items() if u.user_type_id != pset.user_type_id)
    if others:
        raise_if_any(
            [
                Problem(
                    AccessCode.SET_OF_OTHER_TYPE,
                    "users",
                    f"permission set {name!r} is for user type {pset.user_type_id}; portal "
                    f"user(s) {', '.join(map(str, others))} are of another type",
                )
            ]
        )
    session.add_all(
        PermissionSetAssignment(portal_user_id=uid, permission_set_id=pset.id) for uid in users
    )
    session.flush()
    return len(users)


def permission_set_view(row: PermissionSet) -> dict[str, Any]:
    """A set as plain values."""
    return {
        "name": row.name,
        "user_type_id": row.user_type_id,
        "show_pii": row.show_pii,
        "show_ephi": row.show_ephi,
        "modules": row.modules,
    }


def get_permission_set(session: Session, org_id: int, name: str) -> PermissionSet:
    row = session.scalar(
        select(PermissionSet).where(PermissionSet.org_id == org_id, PermissionSet.name == name)
    )
    if row is None:
        raise NotFound(f"permission set {name!r} does not exist in org {org_id}")
    return row


def forget_user_type(session: Session, user_type_id: int) -> None:
    """Delete a user type's exposures and permission sets (with their assignments).

    Called when the type itself is deleted: its users, moved to another type, get that
    type's exposure and defaults, not the deleted type's.
    """
    sets = select(PermissionSet.id).where(PermissionSet.user_type_id == user_type_id)
    session.execute(
        delete(PermissionSetAssignment).where(PermissionSetAssignment.permission_set_id.in_(sets))
    )
    session.execute(delete(PermissionSet).where(PermissionSet.user_type_id == user_type_id))
    session.execute(delete(ModuleExposure).where(ModuleExposure.user_type_id == user_type_id))
