"""The demo's plan: which invites it runs, by whom, into which user type, in which order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunPlan:
    """One invite the demo starts: who invites whom into which type."""

    label: str
    org_id: int
    user_type_id: int
    inviter_id: int
    crm_ids: list[str]


@dataclass(frozen=True)
class DemoWorld:
    warm_up: RunPlan  # must finish first: it makes some records portal users already
    runs: list[RunPlan]
