"""What one portal user may do in one module: the type's defaults with their set's overrides.

Field access, in order: a PII field is hidden unless the user's permission set has
``show_pii`` (ePHI: ``show_ephi``), and then visible unless the set says otherwise; any other
field takes the set's level, else the type's, else visible. A field the rule links the
record to the user by (a lookup) is never editable, so a user cannot re-link a record.
Only catalogued fields are ever sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    AccessCode,
    CrmRecord,
    FieldAccess,
    ModuleExposure,
    ModuleRole,
    PermissionSet,
    PermissionSetAssignment,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    RecordAction,
)

from ..errors import NotFound
from .catalogue import FieldSpec, load_catalogue
from .exposures import ACTIONS, default_permissions, role_of
from .nodes import Lookup, Node, leaves
from .problems import AccessRefused, Refusal
from .rules import parse_rule


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in portal user, as the rules need them."""

    portal_user_id: int
    org_id: int
    user_type_id: int
    user_type: str
    primary_module: str
    record_id: int
    record_crm_id: str
    status: PortalUserStatus
    invited_by_id: int | None
    permission_set: str | None
    show_pii: bool
    show_ephi: bool
    overrides: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModulePolicy:
    """One module for one viewer: its rule, record permissions and field access."""

    module: str
    role: ModuleRole
    rule: Node | None
    permissions: dict[RecordAction, bool]
    fields: dict[str, FieldSpec]  # every catalogued field of the module
    access: dict[str, FieldAccess]  # effective, for every catalogued field
    link_fields: frozenset[str]
    source: str  # "user type X" or "permission set Y"

    def shown(self) -> list[FieldSpec]:
        """The fields the user may see, in catalogue order."""
        return [s for n, s in self.fields.items() if self.access[n] is not FieldAccess.HIDDEN]

    def editable(self, name: str) -> bool:
        """Whether the user may write this field (where they may write the record at all)."""
        return self.access.get(name) is FieldAccess.VISIBLE and name not in self.link_fields


def load_viewer(session: Session, portal_user_id: int, org_id: int | None = None) -> Viewer:
    """The portal user with their type and permission set; NotFound if not (in that org)."""
    row = session.execute(
        select(PortalUser, PortalUserType, CrmRecord.crm_id)
        .join(PortalUserType, PortalUserType.id == PortalUser.user_type_id)
        .join(CrmRecord, CrmRecord.id == PortalUser.record_id)
        .where(PortalUser.id == portal_user_id)
    ).first()
    if row is None or (org_id is not None and row[0].org_id != org_id):
        where = f" in org {org_id}" if org_id is not None else ""
        raise NotFound(f"portal user {portal_user_id} does not exist{where}")
    user, user_type, crm_id = row
    pset = session.scalar(
        select(PermissionSet)
        .join(
            PermissionSetAssignment, PermissionSetAssignment.permission_set_id == PermissionSet.id
        )
        .where(PermissionSetAssignment.portal_user_id == user.id)
    )
    if pset is not None and pset.user_type_id != user_type.id:
        pset = None  # moved to another type since: that type's defaults apply
    return Viewer(
        portal_user_id=user.id,
        org_id=user.org_id,
        user_type_id=user_type.id,
        user_type=user_type.name,
        primary_module=user_type.module,
        record_id=user.record_id,
        record_crm_id=crm_id,
        status=user.status,
        invited_by_id=user.invited_by_id,
        permission_set=pset.name if pset else None,
        show_pii=bool(pset and pset.show_pii),
        show_ephi=bool(pset and pset.show_ephi),
        overrides=dict(pset.modules) if pset else {},
    )


def active_refusal(viewer: Viewer) -> Refusal | None:
    """Why the viewer may see nothing at all, or None."""
    if viewer.status is PortalUserStatus.CONFIRMED:
        return None
    return Refusal(
        AccessCode.USER_NOT_ACTIVE,
        f"portal user {viewer.portal_user_id} is {viewer.status.value}, not confirmed: "
        "they see no records",
    )


def module_policy(session: Session, viewer: Viewer, module: str) -> ModulePolicy:
    """The viewer's policy for ``module``; raises ``AccessRefused`` when they may not see it."""
    refusal = active_refusal(viewer)
    if refusal is not None:
        raise AccessRefused(refusal)
    row = session.scalar(
        select(ModuleExposure).where(
            ModuleExposure.user_type_id == viewer.user_type_id, ModuleExposure.module == module
        )
    )
    if row is None and module != viewer.primary_module:
        raise AccessRefused(
            Refusal(
                AccessCode.MODULE_NOT_EXPOSED,
                f"{module} is not exposed to user type {viewer.user_type}",
            )
        )
    role = role_of(viewer.primary_module, module, bool(row and row.public))
    permissions = default_permissions(role)
    type_levels: dict[str, str] = {}
    if row is not None:
        permissions = {a: bool(getattr(row, f"can_{a.value}")) for a in ACTIONS}
        type_levels = dict(row.field_access)
    override = viewer.overrides.get(module, {})
    for action in ACTIONS:
        if action.value in override:
            permissions[action] = bool(override[action.value])
    source = (
        f"permission set {viewer.permission_set}" if override else f"user type {viewer.user_type}"
    )
    if role is ModuleRole.PRIMARY:
        permissions[RecordAction.VIEW] = True
    elif not permissions[RecordAction.VIEW]:
        raise AccessRefused(
            Refusal(AccessCode.MODULE_NOT_EXPOSED, f"{source} does not allow viewing {module}")
        )
    catalogue = load_catalogue(session, viewer.org_id)
    rule = None
    if row is not None and row.rule is not None:
        rule = parse_rule(
            row.rule, module=module, primary_module=viewer.primary_module, catalogue=catalogue
        )
    fields = catalogue.modules.get(module, {})
    set_levels = override.get("fields", {})
    access = {
        name: _level(spec, type_levels.get(name), set_levels.get(name), viewer)
        for name, spec in fields.items()
    }
    links = frozenset(
        leaf.field.name for leaf in (leaves(rule) if rule else []) if isinstance(leaf, Lookup)
    )
    return ModulePolicy(module, role, rule, permissions, dict(fields), access, links, source)


def _level(
    spec: FieldSpec, type_level: str | None, set_level: str | None, viewer: Viewer
) -> FieldAccess:
    if spec.sensitive:
        shown = (not spec.pii or viewer.show_pii) and (not spec.ephi or viewer.show_ephi)
        if not shown:
            return FieldAccess.HIDDEN
        return FieldAccess(set_level) if set_level else FieldAccess.VISIBLE
    chosen = set_level or type_level
    return FieldAccess(chosen) if chosen else FieldAccess.VISIBLE
