"""Why a bulk action or a transfer left a portal user alone: a code and a detail, as a value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RefusalCode(StrEnum):
    """Why one portal user was refused by a bulk action (reinvite, deactivate, ...) or a move."""

    UNKNOWN_USER = "unknown_user"  # no such portal user in the org
    OTHER_USER_TYPE = "other_user_type"  # the user is not of the run's user type
    ALREADY_OF_USER_TYPE = "already_of_user_type"  # a move to the type the user has
    INVALID_TRANSITION = "invalid_transition"  # the user's status does not allow the action
    LICENCE_LIMIT = "licence_limit"  # the user type has no licence left for the user
    REFUSED = "refused"  # another rule of the action; the detail says which


@dataclass(frozen=True)
class Refusal:
    """One refusal: a stable code to branch on, and a sentence for people."""

    code: RefusalCode
    detail: str

    def __str__(self) -> str:
        return self.detail
