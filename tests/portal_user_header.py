"""A test-only stand-in for the sign-in's ``current_portal_user``: the user from headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from portalflow.web.problems import ApiProblem, ProblemCode


@dataclass(frozen=True)
class HeaderUser:
    portal_user_id: int
    org_id: int


def header_portal_user(
    user: Annotated[int | None, Header(alias="X-Test-Portal-User")] = None,
    org: Annotated[int | None, Header(alias="X-Test-Org")] = None,
) -> HeaderUser:
    """The portal user the headers name; 401 without them, as the real sign-in answers."""
    if user is None or org is None:
        raise ApiProblem(401, "sign in to the portal first", ProblemCode.UNAUTHORIZED)
    return HeaderUser(user, org)
