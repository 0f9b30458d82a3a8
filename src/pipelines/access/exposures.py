"""What a user type exposes: each module's role, rule, record and field permissions.

Checked against the org's field catalogue when saved, refused as a whole with
:class:`~.problems.AccessInvalid`: the primary module is always visible (its view cannot
be turned off, nothing can be created in it or deleted from it); a public module is view
only; a related module needs a rule (a lookup link and/or criteria), else it would show
every record; PII and ePHI fields stay hidden at the user type (only a permission set that
shows them on purpose may make them visible or read only).
"""

from __future__ import annotations

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
    PortalUserType,
    RecordAction,
)

from ..errors import NotFound
from .catalogue import Catalogue, load_catalogue
from .nodes import Node, describe, to_json
from .problems import AccessInvalid, Problem, raise_if_any
from .rules import parse_rule

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


@dataclass(frozen=True, slots=True)
class Exposure:
    """A module as a user type exposes it (the saved row, with its rule parsed)."""

    module: str
    role: ModuleRole
    rule: Node | None
    permissions: dict[RecordAction, bool]
    field_access: dict[str, FieldAccess]
    primary_module: str


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
    user_type = get_user_type(session, org_id, user_type_id)
    catalogue = load_catalogue(session, org_id)
    perms = parse_permissions(permissions or {}, "permissions")
    exposure = check_exposure(
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
    user_type = get_user_type(session, org_id, user_type_id)
    result = session.execute(
        delete(ModuleExposure).where(
            ModuleExposure.user_type_id == user_type.id, ModuleExposure.module == module
        )
    )
    session.flush()
    return bool(result.rowcount)


def saved_rule(session: Session, org_id: int, user_type_id: int, module: str) -> Node | None:
    """The parsed rule a user type has for ``module`` (None: primary or public without one)."""
    user_type = get_user_type(session, org_id, user_type_id)
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


def check_exposure(
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
    """The exposure checked against the catalogue; raises ``AccessInvalid`` if wrong."""
    prefix = f"{where}: " if where else ""
    problems: list[Problem] = []
    missing = catalogue.module_problem(module, f"{prefix}module")
    primary_missing = catalogue.module_problem(user_type.module, f"{prefix}primary module")
    raise_if_any([p for p in (missing, primary_missing) if p is not None])
    role = role_of(user_type.module, module, public)
    node = _rule_of(catalogue, user_type, module, role, public, rule, f"{prefix}rule", problems)
    merged = default_permissions(role) | dict(permissions)
    problems.extend(permission_problems(role, module, merged, f"{prefix}permissions"))
    access = field_levels(catalogue, module, fields, f"{prefix}fields", problems)
    problems.extend(_shown_sensitive(catalogue, module, access, f"{prefix}fields"))
    raise_if_any(problems)
    return Exposure(module, role, node, merged, access, user_type.module)


def _rule_of(
    catalogue: Catalogue,
    user_type: PortalUserType,
    module: str,
    role: ModuleRole,
    public: bool,
    rule: object,
    where: str,
    problems: list[Problem],
) -> Node | None:
    """The exposure's parsed rule; its problems (or a missing or unwanted rule) noted."""
    if role is ModuleRole.PRIMARY:
        if public or rule is not None:
            problems.append(
                Problem(
                    AccessCode.INVALID_RULE,
                    where,
                    f"{module} is the primary module of {user_type.name}: it always shows the "
                    "user's own record and takes no rule and no public flag",
                )
            )
        return None
    if rule is None:
        if role is ModuleRole.RELATED:
            problems.append(
                Problem(
                    AccessCode.INVALID_RULE,
                    where,
                    f"related module {module} needs a rule (a lookup link and/or criteria); "
                    "to show every record to everyone, make it public",
                )
            )
        return None
    try:
        return parse_rule(
            rule, module=module, primary_module=user_type.module, catalogue=catalogue, where=where
        )
    except AccessInvalid as exc:
        problems.extend(exc.problems)
        return None


def _shown_sensitive(
    catalogue: Catalogue, module: str, access: Mapping[str, FieldAccess], where: str
) -> list[Problem]:
    """PII/ePHI fields the type's defaults would show: only a permission set may."""
    problems = []
    for name, level in access.items():
        spec = catalogue.field(module, name)
        if spec is not None and spec.sensitive and level is not FieldAccess.HIDDEN:
            problems.append(
                Problem(
                    AccessCode.PII_HIDDEN,
                    f"{where}.{name}",
                    f"{module}.{name} holds {'PII' if spec.pii else 'ePHI'}: it stays hidden at "
                    "the user type; show it with a permission set that has "
                    f"{'show_pii' if spec.pii else 'show_ephi'}",
                )
            )
    return problems


def permission_problems(
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


def parse_permissions(raw: Mapping[str, Any], where: str) -> dict[RecordAction, bool]:
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


def field_levels(
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


def row_permissions(row: ModuleExposure) -> dict[RecordAction, bool]:
    return {action: bool(getattr(row, f"can_{action.value}")) for action in ACTIONS}


def exposed_roles(
    session: Session, user_type: PortalUserType, catalogue: Catalogue
) -> dict[str, ModuleRole]:
    rows = session.scalars(
        select(ModuleExposure).where(ModuleExposure.user_type_id == user_type.id)
    )
    roles = {row.module: role_of(user_type.module, row.module, row.public) for row in rows}
    roles.setdefault(user_type.module, ModuleRole.PRIMARY)
    return roles


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


def get_user_type(session: Session, org_id: int, user_type_id: int) -> PortalUserType:
    user_type = session.get(PortalUserType, user_type_id)
    if user_type is None or user_type.org_id != org_id:
        raise NotFound(f"user type {user_type_id} does not exist in org {org_id}")
    return user_type
