"""Refusals as values: what is wrong (a stable code), where, and in words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from portalflow.models import AccessCode

from ..errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a saved definition: ``where`` is a path such as ``rule.any[1]``."""

    code: AccessCode
    where: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """Plain values for JSON answers."""
        return {"code": self.code.value, "where": self.where, "detail": self.detail}


class AccessInvalid(InvalidInput):
    """A catalogue, exposure or permission set was refused; nothing was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"{p.where}: {p.detail}" for p in self.problems[:5])
        more = len(self.problems) - 5
        super().__init__(shown + (f" (and {more} more)" if more > 0 else ""))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a portal user's request is refused: a code and what exactly was refused."""

    code: AccessCode
    detail: str


class AccessRefused(InvalidInput):
    """A portal user's read or write the permissions do not allow; carries the refusal."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.detail)


def raise_if_any(problems: Sequence[Problem]) -> None:
    """Raise :class:`AccessInvalid` when ``problems`` is not empty."""
    if problems:
        raise AccessInvalid(problems)
