"""A portal user's records: a page of one module, one record, and writes where allowed.

Every read is the compiled query of :mod:`.compiler` (one statement for the records; the
user, their type and set, the exposure and the catalogue are read before it). Only fields
the policy shows are returned. Writes check the record permissions (``edit`` for a record
linked to the user by lookup or their own primary record, ``edit_shared`` for one seen
through criteria only, ``delete`` only for linked records) and each field's access.
A delete moves the record to the recycle bin, as in the CRM. A record a user creates is
linked to them through the rule's lookup field and owned by the CRM user who invited them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    AccessCode,
    CrmRecord,
    FieldAccess,
    FieldType,
    ModuleRole,
    RecordAction,
    utcnow,
)
from portalflow.models.records import RECORD_COLUMNS

from .catalogue import FieldSpec
from .compiler import Compiler
from .policy import ModulePolicy, Viewer, load_viewer, module_policy
from .problems import AccessRefused, Refusal

DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class PortalRecord:
    """One record as the user sees it."""

    id: str  # the CRM id
    values: dict[str, Any]
    own: bool  # linked to the user (or their own record), not only shared by criteria
    can_edit: bool
    can_delete: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON answers."""
        return {
            "id": self.id,
            "values": self.values,
            "linked": self.own,
            "can_edit": self.can_edit,
            "can_delete": self.can_delete,
        }


@dataclass(frozen=True, slots=True)
class RecordPage:
    """A page of one module: the visible fields, the records, the cursor of the next page."""

    module: str
    role: ModuleRole
    fields: list[dict[str, Any]]
    records: list[PortalRecord]
    next_after: int | None
    can_create: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON answers."""
        return {
            "module": self.module,
            "role": self.role.value,
            "fields": self.fields,
            "records": [record.as_dict() for record in self.records],
            "next_after": self.next_after,
            "can_create": self.can_create,
        }


def list_records(
    session: Session,
    portal_user_id: int,
    module: str,
    *,
    after: int | None = None,
    limit: int = DEFAULT_PAGE,
    org_id: int | None = None,
) -> RecordPage:
    """A page of the module's records the user may see, ordered by record id."""
    if not 1 <= limit <= MAX_PAGE:
        raise AccessRefused(
            Refusal(AccessCode.INVALID_VALUE, f"limit must be between 1 and {MAX_PAGE}")
        )
    viewer = load_viewer(session, portal_user_id, org_id)
    policy = module_policy(session, viewer, module)
    compiler = Compiler(policy, viewer, _dialect(session))
    rows = session.execute(compiler.page(after=after, limit=limit)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return RecordPage(
        module=module,
        role=policy.role,
        fields=field_header(policy),
        records=[as_portal_record(policy, row) for row in rows],
        next_after=rows[-1].id if more else None,
        can_create=_can_create(policy),
    )


def get_record(
    session: Session, portal_user_id: int, module: str, crm_id: str, *, org_id: int | None = None
) -> PortalRecord:
    """One record the user may see; refused as not visible whether absent or hidden."""
    viewer = load_viewer(session, portal_user_id, org_id)
    policy = module_policy(session, viewer, module)
    return _visible(session, viewer, policy, crm_id)


def field_header(policy: ModulePolicy) -> list[dict[str, Any]]:
    """The fields the user sees, with their type and whether they are read only."""
    return [
        {
            "name": spec.name,
            "label": spec.label or spec.name,
            "type": spec.type.value,
            "access": (
                FieldAccess.READ_ONLY.value
                if not policy.editable(spec.name)
                else FieldAccess.VISIBLE.value
            ),
            **({"options": list(spec.options)} if spec.options else {}),
        }
        for spec in policy.shown()
    ]


def create_record(
    session: Session,
    portal_user_id: int,
    module: str,
    values: Mapping[str, Any],
    *,
    org_id: int | None = None,
) -> tuple[str, PortalRecord | None]:
    """Create a record in ``module``; returns its CRM id and the record if the rules show it."""
    viewer = load_viewer(session, portal_user_id, org_id)
    policy = module_policy(session, viewer, module)
    if not _can_create(policy):
        raise _not_permitted(policy, RecordAction.CREATE)
    checked = _checked_values(policy, values)
    primary_crm_id = session.scalar(
        select(CrmRecord.crm_id).where(CrmRecord.id == viewer.record_id)
    )
    extras = {name: value for name, value in checked.items() if name not in RECORD_COLUMNS}
    for name in policy.link_fields:
        linked = policy.fields[name].type is FieldType.MULTI_LOOKUP
        extras[name] = [primary_crm_id] if linked else primary_crm_id
    crm_id = f"portal-{uuid.uuid4().hex[:24]}"
    row: dict[str, Any] = {
        "org_id": viewer.org_id,
        "crm_id": crm_id,
        "module": module,
        "owner_id": viewer.invited_by_id,
        "fields": extras,
        "approval_locked": False,
        "review_locked": False,
        "consent_given": False,
        "in_recycle_bin": False,
        "deleted": False,
        "updated_at": utcnow(),
    }
    row |= {name: value for name, value in checked.items() if name in RECORD_COLUMNS}
    session.execute(insert(CrmRecord), [row])
    session.flush()
    try:
        return crm_id, _visible(session, viewer, policy, crm_id)
    except AccessRefused:
        return crm_id, None


def update_record(
    session: Session,
    portal_user_id: int,
    module: str,
    crm_id: str,
    values: Mapping[str, Any],
    *,
    org_id: int | None = None,
) -> PortalRecord:
    """Change fields of a visible record the user may edit; returns it as now seen."""
    viewer = load_viewer(session, portal_user_id, org_id)
    policy = module_policy(session, viewer, module)
    record = _visible(session, viewer, policy, crm_id)
    if not record.can_edit:
        action = RecordAction.EDIT if record.own else RecordAction.EDIT_SHARED
        raise _not_permitted(policy, action, crm_id)
    checked = _checked_values(policy, values)
    stored = session.execute(
        select(CrmRecord.id, CrmRecord.fields).where(
            CrmRecord.org_id == viewer.org_id, CrmRecord.crm_id == crm_id
        )
    ).one()
    changes: dict[str, Any] = {n: v for n, v in checked.items() if n in RECORD_COLUMNS}
    extras = {n: v for n, v in checked.items() if n not in RECORD_COLUMNS}
    if extras:
        changes["fields"] = {**(stored.fields or {}), **extras}
    if changes:
        session.execute(
            update(CrmRecord)
            .where(CrmRecord.id == stored.id)
            .values(**changes, updated_at=utcnow())
        )
        session.flush()
    try:
        return _visible(session, viewer, policy, crm_id)
    except AccessRefused:
        return record  # the change took it out of the rules: the user no longer sees it


def delete_record(
    session: Session, portal_user_id: int, module: str, crm_id: str, *, org_id: int | None = None
) -> None:
    """Move a visible record the user may delete to the recycle bin."""
    viewer = load_viewer(session, portal_user_id, org_id)
    policy = module_policy(session, viewer, module)
    record = _visible(session, viewer, policy, crm_id)
    if not record.can_delete:
        raise _not_permitted(policy, RecordAction.DELETE, crm_id)
    session.execute(
        update(CrmRecord)
        .where(CrmRecord.org_id == viewer.org_id, CrmRecord.crm_id == crm_id)
        .values(in_recycle_bin=True, updated_at=utcnow())
    )
    session.flush()


# --- helpers --------------------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _visible(session: Session, viewer: Viewer, policy: ModulePolicy, crm_id: str) -> PortalRecord:
    row = session.execute(Compiler(policy, viewer, _dialect(session)).one(crm_id)).first()
    if row is None:
        raise AccessRefused(
            Refusal(
                AccessCode.RECORD_NOT_VISIBLE,
                f"no {policy.module} record {crm_id!r} is visible to portal user "
                f"{viewer.portal_user_id}",
            )
        )
    return as_portal_record(policy, row)


def as_portal_record(policy: ModulePolicy, row: Any) -> PortalRecord:
    """A row of the compiled query as the user sees it (fields filtered, permissions)."""
    extras = row.fields or {}
    values: dict[str, Any] = {}
    for spec in policy.shown():
        if spec.name in RECORD_COLUMNS:
            values[spec.name] = getattr(row, spec.name)
        else:
            values[spec.name] = extras.get(spec.name)
    own = bool(row.own)
    perms = policy.permissions
    if policy.role is ModuleRole.PUBLIC:
        can_edit = can_delete = False
    elif policy.role is ModuleRole.PRIMARY:
        can_edit, can_delete = perms[RecordAction.EDIT], False
    else:
        can_edit = perms[RecordAction.EDIT] if own else perms[RecordAction.EDIT_SHARED]
        can_delete = own and perms[RecordAction.DELETE]
    return PortalRecord(row.crm_id, values, own, can_edit, can_delete)


def _can_create(policy: ModulePolicy) -> bool:
    return policy.role is ModuleRole.RELATED and policy.permissions[RecordAction.CREATE]


def _not_permitted(
    policy: ModulePolicy, action: RecordAction, crm_id: str | None = None
) -> AccessRefused:
    what = f"record {crm_id!r} of {policy.module}" if crm_id else f"records of {policy.module}"
    if policy.role is ModuleRole.PUBLIC:
        why = f"{policy.module} is a public module: view only"
    elif action is RecordAction.EDIT_SHARED:
        why = f"{policy.source} does not allow editing records shared by criteria"
    else:
        why = f"{policy.source} does not allow {action.value.replace('_', ' ')}"
    return AccessRefused(
        Refusal(AccessCode.ACTION_NOT_PERMITTED, f"cannot {action.value} {what}: {why}")
    )


def _checked_values(policy: ModulePolicy, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values, each for a field the user may write, each of its field's type."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        spec = policy.fields.get(name)
        if spec is None or policy.access[name] is FieldAccess.HIDDEN:
            raise AccessRefused(
                Refusal(AccessCode.FIELD_NOT_EDITABLE, f"{policy.module} has no field {name!r}")
            )
        if not policy.editable(name) or name in ("crm_id", "module"):
            raise AccessRefused(
                Refusal(
                    AccessCode.FIELD_NOT_EDITABLE,
                    f"{policy.module}.{name} is read only for this portal user",
                )
            )
        checked[name] = _coerce(spec, value)
    return checked


def _coerce(spec: FieldSpec, value: Any) -> Any:
    def bad(why: str) -> AccessRefused:
        return AccessRefused(Refusal(AccessCode.INVALID_VALUE, f"{spec.name}: {why}"))

    if value is None:
        return None
    if spec.type is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise bad("give true or false")
        return value
    if spec.type is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"{value!r} is not a number")
        return value
    if spec.type is FieldType.MULTI_LOOKUP:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad("give a list of CRM ids")
        return list(dict.fromkeys(value))
    if not isinstance(value, str):
        raise bad(f"give a text, not {value!r}")
    text = value.strip()
    if len(text) > 10_000:
        raise bad("at most 10,000 characters")
    if spec.type is FieldType.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise bad(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if spec.type is FieldType.PICKLIST:
        options = {o.lower(): o for o in spec.options or ()}
        if text.lower() not in options:
            raise bad(f"{value!r} is not one of {', '.join(spec.options or ())}")
        return options[text.lower()]
    return text
