"""A rule's nodes (lookup link, match by value, match by field, all/any), in words and JSON.

Which operators fit which field type is here too (:data:`OPERATORS`), as a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portalflow.models import FieldType, RuleOperator

from .catalogue import FieldSpec

Op = RuleOperator

TEXTUAL = frozenset({FieldType.TEXT, FieldType.PICKLIST})
EMPTINESS = frozenset({Op.IS_EMPTY, Op.IS_NOT_EMPTY})
ORDERING = frozenset({Op.LESS_THAN, Op.LESS_OR_EQUAL, Op.GREATER_THAN, Op.GREATER_OR_EQUAL})
LISTS = frozenset({Op.IN, Op.NOT_IN})
_NEGATIVE = frozenset({Op.NOT_EQUALS, Op.NOT_IN, Op.NOT_CONTAINS})
_BASIC = frozenset({Op.EQUALS, Op.NOT_EQUALS, *EMPTINESS})

# Which operators fit which field type (match by value).
OPERATORS: dict[FieldType, frozenset[RuleOperator]] = {
    FieldType.TEXT: _BASIC | LISTS | {Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH},
    FieldType.PICKLIST: _BASIC | LISTS,
    FieldType.NUMBER: _BASIC | LISTS | ORDERING,
    FieldType.DATE: _BASIC | ORDERING,
    FieldType.BOOLEAN: frozenset({Op.EQUALS, *EMPTINESS}),
    FieldType.LOOKUP: _BASIC | LISTS,
    FieldType.MULTI_LOOKUP: EMPTINESS,  # its link is {"lookup": F}
}
# Match by field: which operators, between fields of which comparable kinds.
FIELD_OPERATORS = frozenset(
    {Op.EQUALS, Op.NOT_EQUALS, Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH, *ORDERING}
)


def kind_of(field_type: FieldType) -> str:
    """The comparison family: text-like fields compare with each other, numbers with numbers."""
    if field_type in (*TEXTUAL, FieldType.LOOKUP):
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
    if node.op not in EMPTINESS:
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
    if node.op in EMPTINESS:
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


def is_negative(op: RuleOperator) -> bool:
    """Whether the operator also matches an empty value."""
    return op in _NEGATIVE
