"""The rule of a related or public module: lookup links and criteria, combined with and/or.

Stored as JSON, one node per condition::

    {"any": [
        {"lookup": "Contact_Name"},                                   # linked by lookup
        {"field": "Region", "op": "in", "value": ["Ohio", "Michigan"]},   # match by value
        {"field": "Service_Region", "op": "equals", "primary_field": "Mailing_State"},
    ]}                                                                # match by field

``{"all": [...]}`` needs every child, ``{"any": [...]}`` one of them. :func:`parse_rule`
checks a rule against the catalogue when it is saved: unknown module or field, an operator
that does not fit the field's type, a value that does not fit its field (a picklist value
that is not an option), a lookup that does not point at the primary module, and a rule
that no record could ever satisfy (``Stage equals A`` and ``Stage equals B``; ``Amount
greater than 10`` and ``less than 5``; ``is empty`` and ``equals X``...).

Comparisons of text and picklists ignore case; a lookup compares CRM ids exactly. A
negative condition (``not_equals``, ``not_in``, ``not_contains``) also matches an empty
value; a match by field never matches while the user's own field is empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from portalflow.models import AccessCode, FieldType, RuleOperator

from .catalogue import LOOKUPS, Catalogue, FieldSpec
from .nodes import (
    EMPTINESS,
    FIELD_OPERATORS,
    LISTS,
    OPERATORS,
    ORDERING,
    ByField,
    ByValue,
    Group,
    Lookup,
    Node,
    Op,
    kind_of,
)
from .problems import Problem, raise_if_any
from .satisfiable import never_matches

MAX_CONDITIONS = 50
MAX_DEPTH = 5
MAX_LIST = 1000


def parse_rule(
    raw: object, *, module: str, primary_module: str, catalogue: Catalogue, where: str = "rule"
) -> Node:
    """The rule as nodes, checked against the catalogue; raises ``AccessInvalid`` if wrong."""
    parser = _Parser(module, primary_module, catalogue)
    node = parser.parse(raw, where, 1)
    if parser.conditions > MAX_CONDITIONS:
        parser.bad(AccessCode.INVALID_RULE, where, f"at most {MAX_CONDITIONS} conditions a rule")
    raise_if_any(parser.problems)
    assert node is not None
    never = never_matches(node)
    if never is not None:
        raise_if_any([never])
    return node


@dataclass
class _Parser:
    """Parses one rule, collecting every problem rather than stopping at the first."""

    module: str
    primary: str
    catalogue: Catalogue
    problems: list[Problem] = field(default_factory=list)
    conditions: int = 0

    def bad(self, code: AccessCode, where: str, detail: str) -> None:
        self.problems.append(Problem(code, where, detail))

    def parse(self, raw: object, where: str, depth: int) -> Node | None:
        if not isinstance(raw, Mapping):
            self.bad(
                AccessCode.INVALID_RULE,
                where,
                "a rule is an object: {'all': [...]}, {'any': [...]} or a condition",
            )
            return None
        keys = set(map(str, raw))
        if keys & {"all", "any"}:
            return self.group(raw, keys, where, depth)
        self.conditions += 1
        if "lookup" in keys:
            return self.lookup(raw, keys, where)
        return self.condition(raw, keys, where)

    def group(self, raw: Mapping[str, Any], keys: set[str], where: str, depth: int) -> Node | None:
        if len(keys) != 1:
            self.bad(
                AccessCode.INVALID_RULE,
                where,
                "a group has one key, 'all' or 'any', and nothing else",
            )
            return None
        combine = next(iter(keys))
        children_raw = raw[combine]
        if not isinstance(children_raw, list) or not children_raw:
            self.bad(
                AccessCode.INVALID_RULE, where, f"'{combine}' needs a non-empty list of conditions"
            )
            return None
        if depth >= MAX_DEPTH:
            self.bad(AccessCode.INVALID_RULE, where, f"groups nest at most {MAX_DEPTH} deep")
            return None
        children = [
            self.parse(child, f"{where}.{combine}[{i}]", depth + 1)
            for i, child in enumerate(children_raw)
        ]
        if any(child is None for child in children):
            return None
        return Group(where, combine, tuple(c for c in children if c is not None))

    def lookup(self, raw: Mapping[str, Any], keys: set[str], where: str) -> Node | None:
        if keys != {"lookup"}:
            self.bad(
                AccessCode.INVALID_RULE,
                where,
                "a lookup link is {'lookup': <field>} and nothing else",
            )
            return None
        spec = _field(raw["lookup"], self.module, self.catalogue, where, self.problems)
        if spec is None:
            return None
        if spec.type not in LOOKUPS or spec.lookup_module != self.primary:
            points = (
                f"a lookup to {spec.lookup_module}" if spec.type in LOOKUPS else spec.type.value
            )
            self.bad(
                AccessCode.NOT_A_LOOKUP,
                where,
                f"{self.module}.{spec.name} is {points}, not a lookup to the primary module "
                f"{self.primary}",
            )
            return None
        return Lookup(where, spec)

    def condition(self, raw: Mapping[str, Any], keys: set[str], where: str) -> Node | None:
        by_field = "primary_field" in keys
        allowed = {"field", "op", "primary_field" if by_field else "value"}
        if "field" not in keys or "op" not in keys or keys - allowed:
            self.bad(
                AccessCode.INVALID_RULE,
                where,
                "a condition is {'field', 'op', 'value'} (match by value), {'field', 'op', "
                "'primary_field'} (match by field) or {'lookup': <field>}",
            )
            return None
        spec = _field(raw["field"], self.module, self.catalogue, where, self.problems)
        try:
            op = RuleOperator(raw["op"])
        except ValueError:
            self.bad(
                AccessCode.OPERATOR_NOT_FOR_TYPE,
                where,
                f"unknown operator {raw['op']!r}; operators: {', '.join(RuleOperator)}",
            )
            return None
        if spec is None:
            return None
        if by_field:
            return _by_field(
                where, spec, op, raw["primary_field"], self.primary, self.catalogue, self.problems
            )
        fitting = OPERATORS[spec.type]
        if op not in fitting:
            self.bad(
                AccessCode.OPERATOR_NOT_FOR_TYPE,
                where,
                f"{spec.name} is a {spec.type.value} field; {op.value} does not fit it "
                f"(use one of {', '.join(sorted(o.value for o in fitting))})",
            )
            return None
        value = _value(spec, op, raw.get("value"), "value" in keys, where, self.problems)
        if value is _BAD:
            return None
        return ByValue(where, spec, op, value)


def _field(
    name: object, module: str, catalogue: Catalogue, where: str, problems: list[Problem]
) -> FieldSpec | None:
    missing = catalogue.module_problem(module, where)
    if missing is not None:
        problems.append(missing)
        return None
    spec = catalogue.field(module, name) if isinstance(name, str) else None
    if spec is None:
        problems.append(catalogue.field_problem(module, name, where))
    return spec


def _by_field(
    where: str,
    spec: FieldSpec,
    op: RuleOperator,
    name: object,
    primary: str,
    catalogue: Catalogue,
    problems: list[Problem],
) -> ByField | None:
    other = _field(name, primary, catalogue, where, problems)
    if other is None:
        return None
    if op not in FIELD_OPERATORS:
        problems.append(
            Problem(
                AccessCode.OPERATOR_NOT_FOR_TYPE,
                where,
                f"a match by field takes one of {', '.join(sorted(FIELD_OPERATORS))}, "
                f"not {op.value}",
            )
        )
        return None
    kinds = (kind_of(spec.type), kind_of(other.type))
    if kinds[0] != kinds[1] or kinds[0] in ("boolean", "multi_lookup"):
        problems.append(
            Problem(
                AccessCode.OPERATOR_NOT_FOR_TYPE,
                where,
                f"{spec.name} ({spec.type.value}) cannot be compared with the user's "
                f"{other.name} ({other.type.value})",
            )
        )
        return None
    textual = op in (Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH)
    if (textual and kinds[0] != "text") or (op in ORDERING and kinds[0] not in ("number", "date")):
        problems.append(
            Problem(
                AccessCode.OPERATOR_NOT_FOR_TYPE,
                where,
                f"{op.value} does not fit {spec.name} and {other.name} ({spec.type.value} fields)",
            )
        )
        return None
    return ByField(where, spec, op, other)


class _Bad:
    pass


_BAD = _Bad()


def _value(
    spec: FieldSpec, op: RuleOperator, raw: Any, given: bool, where: str, problems: list[Problem]
) -> Any:
    def bad(detail: str) -> _Bad:
        problems.append(Problem(AccessCode.INVALID_VALUE, where, detail))
        return _BAD

    if op in EMPTINESS:
        return bad(f"{op.value} takes no value") if given else None
    if not given:
        return bad(f"{spec.name} {op.value} needs a value")
    if op in LISTS:
        if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST:
            return bad(f"{op.value} needs a list of 1 to {MAX_LIST} values")
        values = []
        for item in raw:
            one = _scalar(spec, op, item, bad)
            if one is _BAD:
                return _BAD
            values.append(one)
        return tuple(dict.fromkeys(values))
    if isinstance(raw, list):
        return bad(f"{op.value} takes one value; use in / not_in for a list")
    return _scalar(spec, op, raw, bad)


def _scalar(spec: FieldSpec, op: RuleOperator, raw: Any, bad: Any) -> Any:
    kind = spec.type
    if kind is FieldType.BOOLEAN:
        return (
            raw if isinstance(raw, bool) else bad(f"{spec.name} is a boolean: give true or false")
        )
    if kind is FieldType.NUMBER:
        number = _number(raw)
        return bad(f"{spec.name} is a number; {raw!r} is not one") if number is None else number
    if kind is FieldType.DATE:
        try:
            return date.fromisoformat(raw).isoformat()
        except (TypeError, ValueError):
            return bad(f"{spec.name} is a date; give it as YYYY-MM-DD, not {raw!r}")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return bad(f"{spec.name} takes a text value, not {raw!r}")
    text = str(raw).strip()
    if not text:
        return bad(f"{spec.name} {op.value} needs a non-empty value (use is_empty for none)")
    if len(text) > 500:
        return bad("a value is at most 500 characters")
    if kind is FieldType.PICKLIST:
        options = {o.lower(): o for o in spec.options or ()}
        if text.lower() not in options:
            return bad(
                f"{text!r} is not an option of {spec.name} "
                f"(options: {', '.join(spec.options or ())})"
            )
        return options[text.lower()]
    return text


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        number = float(raw) if isinstance(raw, int | float | str) else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None
