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
from dataclasses import dataclass
from datetime import date
from typing import Any

from portalflow.models import AccessCode, FieldType, RuleOperator

from .catalogue import LOOKUPS, Catalogue, FieldSpec
from .problems import Problem, raise_if_any

Op = RuleOperator
MAX_CONDITIONS = 50
MAX_DEPTH = 5
MAX_LIST = 1000

_TEXTUAL = frozenset({FieldType.TEXT, FieldType.PICKLIST})
_EMPTINESS = frozenset({Op.IS_EMPTY, Op.IS_NOT_EMPTY})
_ORDERING = frozenset({Op.LESS_THAN, Op.LESS_OR_EQUAL, Op.GREATER_THAN, Op.GREATER_OR_EQUAL})
_LISTS = frozenset({Op.IN, Op.NOT_IN})
_NEGATIVE = frozenset({Op.NOT_EQUALS, Op.NOT_IN, Op.NOT_CONTAINS})
_BASIC = frozenset({Op.EQUALS, Op.NOT_EQUALS, *_EMPTINESS})

# Which operators fit which field type (match by value).
OPERATORS: dict[FieldType, frozenset[RuleOperator]] = {
    FieldType.TEXT: _BASIC | _LISTS | {Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH},
    FieldType.PICKLIST: _BASIC | _LISTS,
    FieldType.NUMBER: _BASIC | _LISTS | _ORDERING,
    FieldType.DATE: _BASIC | _ORDERING,
    FieldType.BOOLEAN: frozenset({Op.EQUALS, *_EMPTINESS}),
    FieldType.LOOKUP: _BASIC | _LISTS,
    FieldType.MULTI_LOOKUP: _EMPTINESS,  # its link is {"lookup": F}
}
# Match by field: which operators, between fields of which comparable kinds.
FIELD_OPERATORS = frozenset(
    {Op.EQUALS, Op.NOT_EQUALS, Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH, *_ORDERING}
)


def kind_of(field_type: FieldType) -> str:
    """The comparison family: text-like fields compare with each other, numbers with numbers."""
    if field_type in (*_TEXTUAL, FieldType.LOOKUP):
        return "text"
    return field_type.value


@dataclass(frozen=True, slots=True)
class Lookup:
    """The record's lookup field points at the user's own (primary) record."""

    path: str
    field: FieldSpec


@dataclass(frozen=True, slots=True)
class ByValue:
    """Match by value: the record's field, an operator, a constant."""

    path: str
    field: FieldSpec
    op: RuleOperator
    value: Any  # normalised: str, float, bool, a tuple of those, or None for the emptiness ops


@dataclass(frozen=True, slots=True)
class ByField:
    """Match by field: the record's field, an operator, a field of the user's own record."""

    path: str
    field: FieldSpec
    op: RuleOperator
    primary_field: FieldSpec


@dataclass(frozen=True, slots=True)
class Group:
    """``all`` (and) or ``any`` (or) of its children."""

    path: str
    combine: str
    children: tuple[Node, ...]


Node = Lookup | ByValue | ByField | Group


def parse_rule(
    raw: object, *, module: str, primary_module: str, catalogue: Catalogue, where: str = "rule"
) -> Node:
    """The rule as nodes, checked against the catalogue; raises ``AccessInvalid`` if wrong."""
    problems: list[Problem] = []
    counter = [0]
    node = _parse(raw, where, 1, module, primary_module, catalogue, problems, counter)
    if counter[0] > MAX_CONDITIONS:
        problems.append(
            Problem(AccessCode.INVALID_RULE, where, f"at most {MAX_CONDITIONS} conditions a rule")
        )
    raise_if_any(problems)
    assert node is not None
    never = never_matches(node)
    if never is not None:
        raise_if_any([never])
    return node


def to_json(node: Node) -> dict[str, Any]:
    """The stored form of a parsed rule (values normalised)."""
    if isinstance(node, Group):
        return {node.combine: [to_json(child) for child in node.children]}
    if isinstance(node, Lookup):
        return {"lookup": node.field.name}
    if isinstance(node, ByField):
        return {
            "field": node.field.name,
            "op": node.op.value,
            "primary_field": node.primary_field.name,
        }
    value = list(node.value) if isinstance(node.value, tuple) else node.value
    answer: dict[str, Any] = {"field": node.field.name, "op": node.op.value}
    if node.op not in _EMPTINESS:
        answer["value"] = value
    return answer


def leaves(node: Node) -> list[Lookup | ByValue | ByField]:
    """Every condition of the rule, in order."""
    if isinstance(node, Group):
        return [leaf for child in node.children for leaf in leaves(child)]
    return [node]


def describe(node: Node, primary_module: str | None = None) -> str:
    """The rule in words, e.g. ``Contact_Name links to the user's record OR Region in [...]``."""
    if isinstance(node, Group):
        joiner = " AND " if node.combine == "all" else " OR "
        parts = [
            f"({describe(c, primary_module)})"
            if isinstance(c, Group)
            else describe(c, primary_module)
            for c in node.children
        ]
        return joiner.join(parts)
    if isinstance(node, Lookup):
        whose = f"{primary_module} record" if primary_module else "record"
        return f"{node.field.name} links to the user's own {whose}"
    if isinstance(node, ByField):
        return f"{node.field.name} {_words(node.op)} the user's {node.primary_field.name}"
    if node.op in _EMPTINESS:
        return f"{node.field.name} {_words(node.op)}"
    return f"{node.field.name} {_words(node.op)} {_show(node.value)}"


def _words(op: RuleOperator) -> str:
    return op.value.replace("_", " ")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# --- parsing --------------------------------------------------------------------------------


def _parse(
    raw: object,
    where: str,
    depth: int,
    module: str,
    primary: str,
    catalogue: Catalogue,
    problems: list[Problem],
    counter: list[int],
) -> Node | None:
    def bad(code: AccessCode, detail: str) -> None:
        problems.append(Problem(code, where, detail))

    if not isinstance(raw, Mapping):
        bad(
            AccessCode.INVALID_RULE,
            "a rule is an object: {'all': [...]}, {'any': [...]} or a condition",
        )
        return None
    keys = set(map(str, raw))
    if keys & {"all", "any"}:
        if len(keys) != 1:
            bad(AccessCode.INVALID_RULE, "a group has one key, 'all' or 'any', and nothing else")
            return None
        combine = next(iter(keys))
        children_raw = raw[combine]
        if not isinstance(children_raw, list) or not children_raw:
            bad(AccessCode.INVALID_RULE, f"'{combine}' needs a non-empty list of conditions")
            return None
        if depth >= MAX_DEPTH:
            bad(AccessCode.INVALID_RULE, f"groups nest at most {MAX_DEPTH} deep")
            return None
        children = [
            _parse(
                child,
                f"{where}.{combine}[{i}]",
                depth + 1,
                module,
                primary,
                catalogue,
                problems,
                counter,
            )
            for i, child in enumerate(children_raw)
        ]
        if any(child is None for child in children):
            return None
        return Group(where, combine, tuple(c for c in children if c is not None))

    counter[0] += 1
    if "lookup" in keys:
        if keys != {"lookup"}:
            bad(AccessCode.INVALID_RULE, "a lookup link is {'lookup': <field>} and nothing else")
            return None
        spec = _field(raw["lookup"], module, catalogue, where, problems)
        if spec is None:
            return None
        if spec.type not in LOOKUPS or spec.lookup_module != primary:
            points = (
                f"a lookup to {spec.lookup_module}" if spec.type in LOOKUPS else spec.type.value
            )
            bad(
                AccessCode.NOT_A_LOOKUP,
                f"{module}.{spec.name} is {points}, not a lookup to the primary module {primary}",
            )
            return None
        return Lookup(where, spec)

    allowed = (
        {"field", "op", "value"}
        if "primary_field" not in keys
        else {"field", "op", "primary_field"}
    )
    if "field" not in keys or "op" not in keys or keys - allowed:
        bad(
            AccessCode.INVALID_RULE,
            "a condition is {'field', 'op', 'value'} (match by value), {'field', 'op', "
            "'primary_field'} (match by field) or {'lookup': <field>}",
        )
        return None
    spec = _field(raw["field"], module, catalogue, where, problems)
    try:
        op = RuleOperator(raw["op"])
    except ValueError:
        bad(
            AccessCode.OPERATOR_NOT_FOR_TYPE,
            f"unknown operator {raw['op']!r}; operators: {', '.join(RuleOperator)}",
        )
        return None
    if spec is None:
        return None
    if "primary_field" in keys:
        return _by_field(where, spec, op, raw["primary_field"], primary, catalogue, problems)
    fitting = OPERATORS[spec.type]
    if op not in fitting:
        bad(
            AccessCode.OPERATOR_NOT_FOR_TYPE,
            f"{spec.name} is a {spec.type.value} field; {op.value} does not fit it "
            f"(use one of {', '.join(sorted(o.value for o in fitting))})",
        )
        return None
    value = _value(spec, op, raw.get("value"), "value" in keys, where, problems)
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
    if (textual and kinds[0] != "text") or (op in _ORDERING and kinds[0] not in ("number", "date")):
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

    if op in _EMPTINESS:
        return bad(f"{op.value} takes no value") if given else None
    if not given:
        return bad(f"{spec.name} {op.value} needs a value")
    if op in _LISTS:
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


# --- rules that can never match ------------------------------------------------------------


def never_matches(node: Node) -> Problem | None:
    """A problem if no record could ever satisfy ``node``, else None."""
    if isinstance(node, Lookup | ByField):
        return None
    if isinstance(node, ByValue):
        return None
    found = [never_matches(child) for child in node.children]
    if node.combine == "any":
        if all(found):
            return Problem(
                AccessCode.RULE_NEVER_MATCHES,
                node.path,
                "none of the alternatives can ever match: "
                + "; ".join(f"{p.where}: {p.detail}" for p in found if p),
            )
        return None
    for problem in found:
        if problem is not None:
            return problem
    by_field: dict[str, list[ByValue]] = {}
    for child in node.children:
        if isinstance(child, ByValue):
            by_field.setdefault(child.field.name, []).append(child)
    for conditions in by_field.values():
        if len(conditions) > 1 and not _satisfiable(conditions):
            said = " and ".join(describe(c) for c in conditions)
            return Problem(
                AccessCode.RULE_NEVER_MATCHES,
                node.path,
                f"no record can match all of: {said}",
            )
    return None


def _satisfiable(conditions: list[ByValue]) -> bool:
    """Whether one value of the field could meet every condition (all on one field)."""
    spec = conditions[0].field
    fold = (lambda v: v.lower()) if spec.type in _TEXTUAL else (lambda v: v)
    allowed: set[Any] | None = None
    excluded: set[Any] = set()
    must_be_empty = must_have_value = False
    lower: tuple[Any, bool] | None = None  # (bound, inclusive)
    upper: tuple[Any, bool] | None = None
    texts: list[tuple[RuleOperator, str]] = []
    for c in conditions:
        if c.op is Op.IS_EMPTY:
            must_be_empty = True
        elif c.op is Op.IS_NOT_EMPTY:
            must_have_value = True
        elif c.op in (Op.EQUALS, Op.IN):
            must_have_value = True
            values = {fold(v) for v in (c.value if isinstance(c.value, tuple) else (c.value,))}
            allowed = values if allowed is None else allowed & values
        elif c.op in (Op.NOT_EQUALS, Op.NOT_IN):
            excluded |= {fold(v) for v in (c.value if isinstance(c.value, tuple) else (c.value,))}
        elif c.op in _ORDERING:
            must_have_value = True
            inclusive = c.op in (Op.LESS_OR_EQUAL, Op.GREATER_OR_EQUAL)
            bound = (c.value, inclusive)
            if c.op in (Op.GREATER_THAN, Op.GREATER_OR_EQUAL):
                lower = bound if lower is None or _tighter_lower(bound, lower) else lower
            else:
                upper = bound if upper is None or _tighter_upper(bound, upper) else upper
        elif c.op in (Op.CONTAINS, Op.STARTS_WITH):
            must_have_value = True
            texts.append((c.op, c.value.lower()))
        elif c.op is Op.NOT_CONTAINS:
            texts.append((c.op, c.value.lower()))
    if must_be_empty and must_have_value:
        return False
    if (
        lower is not None
        and upper is not None
        and (lower[0] > upper[0] or (lower[0] == upper[0] and not (lower[1] and upper[1])))
    ):
        return False
    if allowed is None:
        return True
    for value in allowed - excluded:
        if lower is not None and (value < lower[0] or (value == lower[0] and not lower[1])):
            continue
        if upper is not None and (value > upper[0] or (value == upper[0] and not upper[1])):
            continue
        if all(_text_ok(op, text, str(value).lower()) for op, text in texts):
            return True
    return False


def _text_ok(op: RuleOperator, text: str, value: str) -> bool:
    if op is Op.CONTAINS:
        return text in value
    if op is Op.STARTS_WITH:
        return value.startswith(text)
    return text not in value


def _tighter_lower(new: tuple[Any, bool], old: tuple[Any, bool]) -> bool:
    return new[0] > old[0] or (new[0] == old[0] and not new[1])


def _tighter_upper(new: tuple[Any, bool], old: tuple[Any, bool]) -> bool:
    return new[0] < old[0] or (new[0] == old[0] and not new[1])


def is_negative(op: RuleOperator) -> bool:
    """Whether the operator also matches an empty value."""
    return op in _NEGATIVE
