"""What the demo plans to run: one invite per plan, shared by the email and SMS worlds."""

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
