"""The field catalogue: which modules an org has and what type each field is.

A module exists for access rules once its catalogue is saved. A field named like a record
column (``crm_id``, ``first_name``, ``last_name``, ``email``, ``phone``) is read from that
column, any other from the record's extra fields. Replacing a catalogue re-checks every
saved exposure and permission set of the org, and is refused if one would break.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portalflow.models import AccessCode, FieldType, ModuleField, Org

from ..errors import NotFound
from .problems import Problem, raise_if_any

# Letters, digits, underscore, space and hyphen: never a quote, dot or backslash, so a name
# is always safe inside a JSON path or a SQL string literal.
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ -]{0,99}$")
MODULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ -]{0,99}$")
MAX_FIELDS = 500
MAX_OPTIONS = 1000
LOOKUPS = frozenset({FieldType.LOOKUP, FieldType.MULTI_LOOKUP})
_KEYS = frozenset({"name", "type", "label", "options", "lookup_module", "pii", "ephi"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One catalogued field."""

    module: str
    name: str
    type: FieldType
    label: str | None = None
    options: tuple[str, ...] | None = None
    lookup_module: str | None = None
    pii: bool = False
    ephi: bool = False

    @property
    def sensitive(self) -> bool:
        """PII or ePHI: hidden from portal users unless a permission set shows it."""
        return self.pii or self.ephi

    def as_dict(self) -> dict[str, Any]:
        """Plain values, in the shape :func:`set_fields` takes."""
        return {
            "name": self.name,
            "type": self.type.value,
            "label": self.label,
            "options": list(self.options) if self.options is not None else None,
            "lookup_module": self.lookup_module,
            "pii": self.pii,
            "ephi": self.ephi,
        }


class Catalogue:
    """An org's modules and their fields, with the lookups that name what is wrong."""

    def __init__(self, fields: Iterable[FieldSpec]) -> None:
        self.modules: dict[str, dict[str, FieldSpec]] = {}
        for spec in fields:
            self.modules.setdefault(spec.module, {})[spec.name] = spec

    def replaced(self, module: str, fields: Iterable[FieldSpec]) -> Catalogue:
        """A copy with ``module``'s fields replaced."""
        kept = [s for m, specs in self.modules.items() if m != module for s in specs.values()]
        return Catalogue([*kept, *fields])

    def module_problem(self, module: str, where: str) -> Problem | None:
        """A problem naming the known modules when ``module`` has no catalogue."""
        if module in self.modules:
            return None
        return Problem(
            AccessCode.UNKNOWN_MODULE,
            where,
            f"module {module!r} has no field catalogue{_suggest(module, self.modules)}",
        )

    def field(self, module: str, name: str) -> FieldSpec | None:
        """The field, or None."""
        return self.modules.get(module, {}).get(name)

    def field_problem(self, module: str, name: object, where: str) -> Problem:
        """A problem naming the module's fields for an unknown ``name``."""
        known = self.modules.get(module, {})
        return Problem(
            AccessCode.UNKNOWN_FIELD,
            where,
            f"module {module} has no field {name!r}{_suggest(str(name), known)}",
        )


def load_catalogue(session: Session, org_id: int) -> Catalogue:
    """Every catalogued field of the org, each module's in the order it was declared."""
    rows = session.scalars(
        select(ModuleField).where(ModuleField.org_id == org_id).order_by(ModuleField.id)
    )
    return Catalogue(_spec(row) for row in rows)


def parse_fields(module: str, raw: object) -> list[FieldSpec]:
    """Validate a module's field list (``[{"name", "type", ...}, ...]``); refuse with problems."""
    problems: list[Problem] = []
    if not isinstance(module, str) or not MODULE_NAME.match(module):
        problems.append(
            Problem(
                AccessCode.INVALID_FIELD,
                "module",
                f"module name {module!r} must start with a letter and hold only letters, "
                "digits, '_', '-' and spaces (at most 100)",
            )
        )
    if not isinstance(raw, list) or not raw:
        problems.append(
            Problem(AccessCode.INVALID_FIELD, "fields", "give a non-empty list of fields")
        )
        raise_if_any(problems)
    assert isinstance(raw, list)
    if len(raw) > MAX_FIELDS:
        problems.append(
            Problem(AccessCode.INVALID_FIELD, "fields", f"at most {MAX_FIELDS} fields a module")
        )
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"fields[{index}]"
        spec = _parse_field(module, item, where, problems)
        if spec is None:
            continue
        if spec.name in seen:
            problems.append(
                Problem(AccessCode.INVALID_FIELD, where, f"field {spec.name!r} is given twice")
            )
        seen.add(spec.name)
        specs.append(spec)
    raise_if_any(problems)
    return specs


def _parse_field(
    module: str, item: object, where: str, problems: list[Problem]
) -> FieldSpec | None:
    def bad(detail: str) -> None:
        problems.append(Problem(AccessCode.INVALID_FIELD, where, detail))

    if not isinstance(item, Mapping):
        bad("a field is an object with at least a name and a type")
        return None
    unknown = sorted(set(map(str, item)) - _KEYS)
    if unknown:
        bad(f"unknown key(s) {', '.join(unknown)}; a field has {', '.join(sorted(_KEYS))}")
    name = item.get("name")
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        bad(
            f"field name {name!r} must start with a letter and hold only letters, digits, "
            "'_', '-' and spaces (at most 100)"
        )
        return None
    try:
        kind = FieldType(item.get("type"))
    except ValueError:
        types = ", ".join(t.value for t in FieldType)
        bad(f"field {name}: type {item.get('type')!r} is not one of {types}")
        return None
    options = item.get("options")
    if kind is FieldType.PICKLIST:
        options = _picklist_options(name, options, bad)
        if options is None:
            return None
    elif options is not None:
        bad(f"field {name}: only a picklist has options")
    lookup_module = item.get("lookup_module")
    if kind in LOOKUPS:
        if not isinstance(lookup_module, str) or not MODULE_NAME.match(lookup_module):
            bad(f"lookup {name} needs lookup_module, the module whose records it points to")
            return None
    elif lookup_module is not None:
        bad(f"field {name}: only a lookup has a lookup_module")
    flags = {}
    for flag in ("pii", "ephi"):
        value = item.get(flag, False)
        if not isinstance(value, bool):
            bad(f"field {name}: {flag} must be true or false")
        flags[flag] = value is True
    label = item.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 200):
        bad(f"field {name}: label must be a text of at most 200 characters")
        label = None
    return FieldSpec(
        module=module,
        name=name,
        type=kind,
        label=label,
        options=options if kind is FieldType.PICKLIST else None,
        lookup_module=lookup_module if kind in LOOKUPS else None,
        **flags,
    )


def _picklist_options(
    name: str, options: object, bad: Callable[[str], None]
) -> tuple[str, ...] | None:
    """A picklist's options, trimmed; None (and the problem noted) when they are wrong."""
    if (
        not isinstance(options, list)
        or not options
        or len(options) > MAX_OPTIONS
        or not all(isinstance(o, str) and o.strip() for o in options)
    ):
        bad(f"picklist {name} needs options: a list of 1 to {MAX_OPTIONS} non-empty texts")
        return None
    if len({o.strip().lower() for o in options}) != len(options):
        bad(f"picklist {name} lists an option twice (options compare ignoring case)")
    return tuple(o.strip() for o in options)


def replace_fields(session: Session, org_id: int, module: str, specs: list[FieldSpec]) -> None:
    """Write ``specs`` as the module's whole catalogue (flushed, never committed)."""
    if session.get(Org, org_id) is None:
        raise NotFound(f"org {org_id} does not exist")
    session.execute(
        delete(ModuleField).where(ModuleField.org_id == org_id, ModuleField.module == module)
    )
    session.add_all(
        ModuleField(
            org_id=org_id,
            module=module,
            name=spec.name,
            label=spec.label,
            type=spec.type,
            options=list(spec.options) if spec.options is not None else None,
            lookup_module=spec.lookup_module,
            pii=spec.pii,
            ephi=spec.ephi,
        )
        for spec in specs
    )
    session.flush()


def _spec(row: ModuleField) -> FieldSpec:
    return FieldSpec(
        module=row.module,
        name=row.name,
        type=row.type,
        label=row.label,
        options=tuple(row.options) if row.options is not None else None,
        lookup_module=row.lookup_module,
        pii=row.pii,
        ephi=row.ephi,
    )


def _suggest(wanted: str, known: Iterable[str]) -> str:
    names = sorted(known)
    if not names:
        return " (none is defined yet)"
    close = difflib.get_close_matches(wanted, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f" (known: {listed}){hint}"


def catalogue_view(session: Session, org_id: int, module: str | None = None) -> dict[str, Any]:
    """The org's catalogue (or one module's) as plain values: module -> list of fields."""
    if session.get(Org, org_id) is None:
        raise NotFound(f"org {org_id} does not exist")
    modules = load_catalogue(session, org_id).modules
    if module is not None:
        if module not in modules:
            raise NotFound(f"module {module!r} has no field catalogue in org {org_id}")
        modules = {module: modules[module]}
    return {
        name: [spec.as_dict() for spec in fields.values()]
        for name, fields in sorted(modules.items())
    }
