"""Rules no record could ever satisfy, found when they are saved.

Within an ``all``, the conditions on one field are checked together: no value can equal
two different things, be empty and equal something, or lie in an empty range; an ``any``
never matches when none of its branches can.
"""

from __future__ import annotations

from typing import Any

from portalflow.models import AccessCode, RuleOperator

from .nodes import ORDERING, TEXTUAL, ByField, ByValue, Lookup, Node, Op, describe
from .problems import Problem


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
    fold = (lambda v: v.lower()) if spec.type in TEXTUAL else (lambda v: v)
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
        elif c.op in ORDERING:
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
