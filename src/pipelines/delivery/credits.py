"""An org's SMS credits: one per segment, debited atomically and never below zero."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from portalflow.models import Org
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy import orgs


def debit(session: Session, org_id: int, segments: int) -> bool:
    """Take ``segments`` credits if the balance holds them; False (and nothing taken) if not.

    One compare-and-set UPDATE: concurrent senders can never overdraw the balance.
    """
    result = session.execute(
        update(Org)
        .where(Org.id == org_id, Org.sms_credits >= segments)
        .values(sms_credits=Org.sms_credits - segments)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def refund(session: Session, org_id: int, segments: int) -> None:
    """Give back credits for a message the provider did not take."""
    if segments:
        session.execute(
            update(Org)
            .where(Org.id == org_id)
            .values(sms_credits=Org.sms_credits + segments)
            .execution_options(synchronize_session=False)
        )


def add(session: Session, org_id: int, amount: int) -> int:
    """Top up the balance (a purchase); returns the new balance."""
    if amount <= 0:
        raise InvalidInput("credits to add must be a positive number")
    org = orgs.get_org(session, org_id)
    refund(session, org_id, amount)
    session.refresh(org)
    return org.sms_credits
