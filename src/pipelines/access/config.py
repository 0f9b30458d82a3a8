"""Saving access definitions: field catalogues, exposures and permission sets, in one place.

The rules of each live in :mod:`.catalogue`, :mod:`.exposures` and
:mod:`.permission_sets`; this module re-checks every saved exposure and set when a
catalogue changes (refused as ``field_in_use`` when one would break), shows a user type's
whole configuration, and is the one import the CLI and the HTTP API use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    AccessCode,
    ModuleExposure,
    ModuleRole,
    PermissionSet,
    PortalUserType,
)

from .catalogue import Catalogue, FieldSpec, load_catalogue, parse_fields, replace_fields
from .exposures import (
    ACTIONS,
    Exposure,
    check_exposure,
    default_permissions,
    expose_module,
    exposed_roles,
    exposure_view,
    get_user_type,
    role_of,
    row_permissions,
    saved_rule,
    unexpose_module,
)
from .nodes import describe
from .permission_sets import (
    USER_TYPE_TABLES,
    assign_permission_set,
    check_set_modules,
    define_permission_set,
    delete_permission_set,
    forget_user_type,
    permission_set_view,
)
from .problems import AccessInvalid, Problem, raise_if_any
from .rules import parse_rule

__all__ = [
    "ACTIONS",
    "USER_TYPE_TABLES",
    "Exposure",
    "assign_permission_set",
    "default_permissions",
    "define_fields",
    "define_permission_set",
    "delete_permission_set",
    "expose_module",
    "exposure_view",
    "forget_user_type",
    "permission_set_view",
    "role_of",
    "saved_rule",
    "show_user_type",
    "unexpose_module",
]


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
            check_exposure(
                catalogue,
                user_type,
                row.module,
                row.public,
                row.rule,
                row_permissions(row),
                row.field_access,
                where=f"user type {user_type.name}, module {row.module}",
            )
        except AccessInvalid as exc:
            problems.extend(exc.problems)
    for pset in session.scalars(select(PermissionSet).where(PermissionSet.org_id == org_id)):
        user_type = types[pset.user_type_id]
        exposures = exposed_roles(session, user_type, catalogue)
        try:
            check_set_modules(
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


def show_user_type(session: Session, org_id: int, user_type_id: int) -> dict[str, Any]:
    """A user type's whole access configuration as plain values, rules also in words."""
    user_type = get_user_type(session, org_id, user_type_id)
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
                "permissions": {a.value: v for a, v in row_permissions(row).items()},
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
