"""The one registry of codes: every code a flow writes is a member of it, defined nowhere else."""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

import portalflow
from portalflow.models import codes
from portalflow.pipelines.delivery.outcome_table import outcome_table

SOURCE = Path(portalflow.__file__).parent
REGISTRY: list[type[StrEnum]] = [
    value
    for value in vars(codes).values()
    if isinstance(value, type) and issubclass(value, StrEnum)
]
REGISTERED = {member.value for enum in REGISTRY for member in enum}


def test_every_provider_outcome_in_the_tables_is_a_registered_code() -> None:
    given = {row[3] for row in outcome_table() if row[2] != "by ErrorCode"}
    assert given - REGISTERED == set()


def test_every_outcome_code_has_its_meaning() -> None:
    assert set(codes.OutcomeCode) == set(codes.OUTCOME_DESCRIPTIONS)
    assert set(codes.SendFailureCode) == set(codes.SEND_FAILURE_DESCRIPTIONS)
    assert set(codes.ReasonCode) == set(codes.REASON_DESCRIPTIONS)


def _string_constants(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.isupper()
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append((node.targets[0].id, node.value.value))
    return found


def test_no_module_defines_a_registered_code_of_its_own() -> None:
    """A code is the registry's member, never a second string constant beside it.

    Only codes of more than one word count: a single word (``unknown``, ``refused``) is also
    plain English for other things (a client address, a report's category)."""
    registry = SOURCE / "models" / "codes"
    offenders = [
        f"{path.relative_to(SOURCE)}: {name} = {value!r}"
        for path in SOURCE.rglob("*.py")
        if registry not in path.parents and "migrations" not in path.parts
        for name, value in _string_constants(path)
        if value in REGISTERED and "_" in value
    ]
    assert offenders == []


def test_a_refusal_is_a_value_whose_text_is_its_detail() -> None:
    refusal = codes.Refusal(codes.RefusalCode.LICENCE_LIMIT, "Vendors has no licence left")
    assert (refusal.code, str(refusal)) == ("licence_limit", "Vendors has no licence left")
