"""Saving what a user type exposes, its permission sets, and who holds which set.

Every save is checked against the org's field catalogue first and refused as a whole with
:class:`~.problems.AccessInvalid` (each problem a code, a path and words):

- the primary module is always visible: its view cannot be turned off, and nothing can be
  created in it or deleted from it;
- a public module is view only;
- a related module needs a rule (a lookup link and/or criteria), else it would show every
  record: a module meant for everyone is made public;
- PII and ePHI fields stay hidden at the user type; only a permission set that shows them
  on purpose (``show_pii`` / ``show_ephi``) may make them visible or read only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    RecordAction,
)

from ..errors import NotFound
from .catalogue import Catalogue, FieldSpec, load_catalogue, parse_fields, replace_fields
from .problems import AccessInvalid, Problem, raise_if_any
from .rules import Node, describe, parse_rule, to_json

SET_NAME = re.compile(r"^\S(.{0,98}\S)?$")
ACTIONS = tuple(RecordAction)
# What each role may never be given.
FORBIDDEN: dict[ModuleRole, dict[RecordAction, str]] = {
    ModuleRole.PRIMARY: {
        RecordAction.CREATE: "a portal user cannot create another record of their primary module",
        RecordAction.DELETE: "a portal user cannot delete their own primary record",
        RecordAction.EDIT_SHARED: "the primary module shows only the user's own record",
    },
    ModuleRole.PUBLIC: {
        RecordAction.CREATE: "a public module is view only",
        RecordAction.EDIT: "a public module is view only",
        RecordAction.EDIT_SHARED: "a public module is view only",
        RecordAction.DELETE: "a public module is view only",
    },
    ModuleRole.RELATED: {},
}
# The tables that configure one user type: deleted with it, never moved to another.
USER_TYPE_TABLES = (ModuleExposure.__tablename__, PermissionSet.__tablename__)
_SET_MODULE_KEYS = frozenset({*(a.value for a in ACTIONS), "fields"})


@dataclass(frozen=True, slots=True)
class Exposure:
    """A module as a user type exposes it (the saved row, with its rule parsed)."""

    module: str
    role: ModuleRole
    rule: Node | None
    permissions: dict[RecordAction, bool]
    field_access: dict[str, FieldAccess]
    primary_module: str


# --- field catalogues -------------------------------------------------------------------------


def define_fields(session: Session, org_id: int, module: str, raw: object) -> list[FieldSpec]:
    """Replace ``module``'s catalogue; refused if a saved exposure or set would break."""
    specs = parse_fields(module, raw)
    catalogue = load_catalogue(session, org_id).replaced(module, specs)
    problems = [
        Problem(AccessCode.FIELD_IN_USE, p.where, f"the change would break it: {p.detail}")
        for p in _recheck(session, org_id, catalogue)
    ]
    raise_if_any(problems)
    replace_fields(session, org_id, module, specs)
    return specs


def _recheck(session: Session, org_id: int, catalogue: Catalogue) -> list[Problem]:
    """Every saved exposure and set of the org, checked again against ``catalogue``."""
    problems: list[Problem] = []
    types = {
        t.id: t
        for t in session.scalars(select(PortalUserType).where(PortalUserType.org_id == org_id))
    }
    for row in session.scalars(select(ModuleExposure).where(ModuleExposure.org_id == org_id)):
        user_type = types[row.user_type_id]
        try:
            _check_exposure(
                catalogue,
                user_type,
                row.module,
                row.public,
                row.rule,
                _row_permissions(row),
                row.field_access,
                where=f"user type {user_type.name}, module {row.module}",
            )
        except AccessInvalid as exc:
            problems.extend(exc.problems)
    for pset in session.scalars(select(PermissionSet).where(PermissionSet.org_id == org_id)):
        user_type = types[pset.user_type_id]
        exposures = _exposures(session, user_type, catalogue)
        try:
            _check_set_modules(
                catalogue,
                user_type,
                exposures,
                pset.modules,
                pset.show_pii,
                pset.show_ephi,
                where=f"permission set {pset.name}",
            )
        except AccessInvalid as exc:
            problems.extend(exc.problems)
    return problems


# --- exposures ------------------------------------------------------------------------------


def expose_module(
    session: Session,
    org_id: int,
    user_type_id: int,
    module: str,
    *,
    public: bool = False,
    rule: object = None,
    permissions: Mapping[str, bool] | None = None,
    fields: Mapping[str, str] | None = None,
) -> Exposure:
    """Create or replace how a user type exposes ``module`` (flushed, never committed).

    ``permissions`` names any of create/view/edit/edit_shared/delete (the rest keep their
    defaults: view only); ``fields`` maps field names to visible/read_only/hidden.
    """
    user_type = _user_type(session, org_id, user_type_id)
    catalogue = load_catalogue(session, org_id)
    perms = _permissions(permissions or {}, "permissions")
    exposure = _check_exposure(
        catalogue, user_type, module, public, rule, perms, fields or {}, where=""
    )
    row = session.scalar(
        select(ModuleExposure).where(
            ModuleExposure.user_type_id == user_type.id, ModuleExposure.module == module
        )
    )
    if row is None:
        row = ModuleExposure(org_id=org_id, user_type_id=user_type.id, module=module)
        session.add(row)
    row.public = exposure.role is ModuleRole.PUBLIC
    row.rule = to_json(exposure.rule) if exposure.rule is not None else None
    for action, allowed in exposure.permissions.items():
        setattr(row, f"can_{action.value}", allowed)
    row.field_access = {name: level.value for name, level in exposure.field_access.items()}
    session.flush()
    return exposure


def unexpose_module(session: Session, org_id: int, user_type_id: int, module: str) -> bool:
    """Stop exposing ``module`` to the type; False when it was not exposed."""
    user_type = _user_type(session, org_id, user_type_id)
    result = session.execute(
        delete(ModuleExposure).where(
            ModuleExposure.user_type_id == user_type.id, ModuleExposure.module == module
        )
    )
    session.flush()
    return bool(result.rowcount)


def saved_rule(session: Session, org_id: int, user_type_id: int, module: str) -> Node | None:
    """The parsed rule a user type has for ``module`` (None: primary or public without one)."""
    user_type = _user_type(session, org_id, user_type_id)
    row = session.scalar(
        select(ModuleExposure).where(
            ModuleExposure.user_type_id == user_type.id, ModuleExposure.module == module
        )
    )
    if row is None:
        if module == user_type.module:
            return None
        raise NotFound(f"{module} is not exposed to user type {user_type.name}")
    if row.rule is None:
        return None
    return parse_rule(
        row.rule,
        module=module,
        primary_module=user_type.module,
        catalogue=load_catalogue(session, org_id),
    )


def role_of(primary_module: str, module: str, public: bool) -> ModuleRole:
    """The module's role for a user type whose primary module is ``primary_module``."""
    if module == primary_module:
        return ModuleRole.PRIMARY
    return ModuleRole.PUBLIC if public else ModuleRole.RELATED


def default_permissions(role: ModuleRole) -> dict[RecordAction, bool]:
    """View only, whatever the role."""
    return {action: action is RecordAction.VIEW for action in ACTIONS}


def _check_exposure(
    catalogue: Catalogue,
    user_type: PortalUserType,
    module: str,
    public: bool,
    rule: object,
    permissions: Mapping[RecordAction, bool],
    fields: Mapping[str, Any],
    *,
    where: str,
) -> Exposure:
    prefix = f"{where}: " if where else ""
    problems: list[Problem] = []
    missing = catalogue.module_problem(module, f"{prefix}module")
    primary_missing = catalogue.module_problem(user_type.module, f"{prefix}primary module")
    raise_if_any([p for p in (missing, primary_missing) if p is not None])
    role = role_of(user_type.module, module, public)
    node: Node | None = None
    if role is ModuleRole.PRIMARY:
        if public or rule is not None:
            problems.append(
                Problem(
                    AccessCode.INVALID_RULE,
                    f"{prefix}rule",
                    f"{module} is the primary module of {user_type.name}: it always shows the "
                    "user's own record and takes no rule and no public flag",
                )
            )
    elif rule is None:
        if role is ModuleRole.RELATED:
            problems.append(
                Problem(
                    AccessCode.INVALID_RULE,
                    f"{prefix}rule",
                    f"related module {module} needs a rule (a lookup link and/or criteria); "
                    "to show every record to everyone, make it public",
                )
            )
    else:
        try:
            node = parse_rule(
                rule,
                module=module,
                primary_module=user_type.module,
                catalogue=catalogue,
                where=f"{prefix}rule",
            )
        except AccessInvalid as exc:
            problems.extend(exc.problems)
    merged = default_permissions(role) | dict(permissions)
    problems.extend(_permission_problems(role, module, merged, f"{prefix}permissions"))
    access = _field_levels(catalogue, module, fields, f"{prefix}fields", problems)
    for name, level in access.items():
        spec = catalogue.field(module, name)
        if spec is not None and spec.sensitive and level is not FieldAccess.HIDDEN:
            problems.append(
                Problem(
                    AccessCode.PII_HIDDEN,
                    f"{prefix}fields.{name}",
                    f"{module}.{name} holds {'PII' if spec.pii else 'ePHI'}: it stays hidden at "
                    "the user type; show it with a permission set that has "
                    f"{'show_pii' if spec.pii else 'show_ephi'}",
                )
            )
    raise_if_any(problems)
    return Exposure(module, role, node, merged, access, user_type.module)


def _permission_problems(
    role: ModuleRole, module: str, perms: Mapping[RecordAction, bool], where: str
) -> list[Problem]:
    problems = [
        Problem(AccessCode.PERMISSION_NOT_ALLOWED, f"{where}.{action.value}", f"{module}: {why}")
        for action, why in FORBIDDEN[role].items()
        if perms.get(action)
    ]
    if role is ModuleRole.PRIMARY and perms.get(RecordAction.VIEW) is False:
        problems.append(
            Problem(
                AccessCode.PERMISSION_NOT_ALLOWED,
                f"{where}.view",
                f"{module} is the primary module: the user's own record is always visible",
            )
        )
    return problems


def _permissions(raw: Mapping[str, Any], where: str) -> dict[RecordAction, bool]:
    problems: list[Problem] = []
    answer: dict[RecordAction, bool] = {}
    for key, value in raw.items():
        try:
            action = RecordAction(key)
        except ValueError:
            problems.append(
                Problem(
                    AccessCode.INVALID_RULE,
                    f"{where}.{key}",
                    f"unknown permission {key!r}; permissions: {', '.join(RecordAction)}",
                )
            )
            continue
        if not isinstance(value, bool):
            problems.append(
                Problem(AccessCode.INVALID_VALUE, f"{where}.{key}", "give true or false")
            )
            continue
        answer[action] = value
    raise_if_any(problems)
    return answer


def _field_levels(
    catalogue: Catalogue,
    module: str,
    raw: Mapping[str, Any],
    where: str,
    problems: list[Problem],
) -> dict[str, FieldAccess]:
    levels: dict[str, FieldAccess] = {}
    if not isinstance(raw, Mapping):
        problems.append(
            Problem(AccessCode.INVALID_VALUE, where, "fields map field names to access levels")
        )
        return levels
    for name, value in raw.items():
        if catalogue.field(module, name) is None:
            problems.append(catalogue.field_problem(module, name, f"{where}.{name}"))
            continue
        try:
            levels[name] = FieldAccess(value)
        except ValueError:
            problems.append(
                Problem(
                    AccessCode.INVALID_VALUE,
                    f"{where}.{name}",
                    f"{value!r} is not a field access; use one of {', '.join(FieldAccess)}",
                )
            )
    return levels


def _row_permissions(row: ModuleExposure) -> dict[RecordAction, bool]:
    return {action: bool(getattr(row, f"can_{action.value}")) for action in ACTIONS}


def _exposures(
    session: Session, user_type: PortalUserType, catalogue: Catalogue
) -> dict[str, ModuleRole]:
    rows = session.scalars(
        select(ModuleExposure).where(ModuleExposure.user_type_id == user_type.id)
    )
    roles = {row.module: role_of(user_type.module, row.module, row.public) for row in rows}
    roles.setdefault(user_type.module, ModuleRole.PRIMARY)
    return roles


# --- permission sets ---------------------------------------------------------------------------


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
    user_type = _user_type(session, org_id, user_type_id)
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise_if_any(
            [Problem(AccessCode.INVALID_VALUE, "name", "a set name is 1 to 100 characters")]
        )
    catalogue = load_catalogue(session, org_id)
    roles = _exposures(session, user_type, catalogue)
    stored = _check_set_modules(
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


def _check_set_modules(
    catalogue: Catalogue,
    user_type: PortalUserType,
    roles: Mapping[str, ModuleRole],
    modules: Mapping[str, Any],
    show_pii: bool,
    show_ephi: bool,
    *,
    where: str,
) -> dict[str, Any]:
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
            missing = catalogue.module_problem(module, here)
            problems.append(
                missing
                or Problem(
                    AccessCode.MODULE_NOT_EXPOSED,
                    here,
                    f"{module} is not exposed to user type {user_type.name}; expose it first",
                )
            )
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
            perms = _permissions({k: v for k, v in overrides.items() if k != "fields"}, here)
        except AccessInvalid as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(_permission_problems(role, module, perms, here))
        levels = _field_levels(
            catalogue, module, overrides.get("fields", {}), f"{here}.fields", problems
        )
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
                        f"{here}.fields.{name}",
                        f"{module}.{name} holds {'PII' if hidden_pii else 'ePHI'} and the set "
                        f"hides those: turn on {flag} to show it",
                    )
                )
        entry: dict[str, Any] = {a.value: v for a, v in perms.items()}
        if levels:
            entry["fields"] = {n: level.value for n, level in levels.items()}
        stored[module] = entry
    raise_if_any(problems)
    return stored


def delete_permission_set(session: Session, org_id: int, name: str) -> int:
    """Delete the named set and its assignments; returns how many users held it."""
    row = _permission_set(session, org_id, name)
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
    pset = _permission_set(session, org_id, name)
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


# --- reading back -------------------------------------------------------------------------------


def show_user_type(session: Session, org_id: int, user_type_id: int) -> dict[str, Any]:
    """A user type's whole access configuration as plain values, rules also in words."""
    user_type = _user_type(session, org_id, user_type_id)
    catalogue = load_catalogue(session, org_id)
    rows = {
        row.module: row
        for row in session.scalars(
            select(ModuleExposure)
            .where(ModuleExposure.user_type_id == user_type.id)
            .order_by(ModuleExposure.module)
        )
    }
    modules = []
    if user_type.module not in rows:
        modules.append(
            {
                "module": user_type.module,
                "role": ModuleRole.PRIMARY.value,
                "rule": None,
                "rule_text": "the user's own record",
                "permissions": {
                    a.value: v for a, v in default_permissions(ModuleRole.PRIMARY).items()
                },
                "fields": {},
            }
        )
    for module, row in rows.items():
        role = role_of(user_type.module, module, row.public)
        text = "the user's own record" if role is ModuleRole.PRIMARY else "every record"
        if row.rule is not None:
            try:
                node = parse_rule(
                    row.rule, module=module, primary_module=user_type.module, catalogue=catalogue
                )
                text = describe(node, user_type.module)
            except AccessInvalid as exc:
                text = f"(no longer valid: {exc})"
        modules.append(
            {
                "module": module,
                "role": role.value,
                "rule": row.rule,
                "rule_text": text,
                "permissions": {a.value: v for a, v in _row_permissions(row).items()},
                "fields": dict(row.field_access),
            }
        )
    sets = session.scalars(
        select(PermissionSet)
        .where(PermissionSet.user_type_id == user_type.id)
        .order_by(PermissionSet.name)
    )
    return {
        "user_type_id": user_type.id,
        "user_type": user_type.name,
        "primary_module": user_type.module,
        "modules": modules,
        "permission_sets": [permission_set_view(s) for s in sets],
    }


def permission_set_view(row: PermissionSet) -> dict[str, Any]:
    """A set as plain values."""
    return {
        "name": row.name,
        "user_type_id": row.user_type_id,
        "show_pii": row.show_pii,
        "show_ephi": row.show_ephi,
        "modules": row.modules,
    }


def exposure_view(exposure: Exposure) -> dict[str, Any]:
    """A saved exposure as plain values."""
    return {
        "module": exposure.module,
        "role": exposure.role.value,
        "rule": to_json(exposure.rule) if exposure.rule is not None else None,
        "rule_text": (
            describe(exposure.rule, exposure.primary_module) if exposure.rule is not None else None
        ),
        "permissions": {a.value: v for a, v in exposure.permissions.items()},
        "fields": {n: level.value for n, level in exposure.field_access.items()},
    }


def _user_type(session: Session, org_id: int, user_type_id: int) -> PortalUserType:
    user_type = session.get(PortalUserType, user_type_id)
    if user_type is None or user_type.org_id != org_id:
        raise NotFound(f"user type {user_type_id} does not exist in org {org_id}")
    return user_type


def _permission_set(session: Session, org_id: int, name: str) -> PermissionSet:
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
