"""The per-org suppression list: addresses and numbers no invitation goes to."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import Channel, Suppression, utcnow
from portalflow.pipelines.bulk_sql import among
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.tenancy import orgs


def normalise(channel: Channel, address: str) -> str:
    """Emails compare case-insensitively; numbers are already E.164."""
    address = address.strip()
    return address.lower() if channel == Channel.EMAIL else address


def suppressed_among(
    session: Session, org_id: int, channel: Channel, addresses: Iterable[str]
) -> set[str]:
    """Which of ``addresses`` (normalised) are suppressed for the org, in one query."""
    wanted = {normalise(channel, address) for address in addresses if address}
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Suppression.address).where(
                Suppression.org_id == org_id,
                Suppression.channel == channel,
                among(session, Suppression.address, wanted),
                Suppression.cleared_at.is_(None),
            )
        )
    )


def suppress(
    session: Session,
    org_id: int,
    channel: Channel,
    address: str,
    reason: str,
    *,
    invitation_id: int | None = None,
) -> bool:
    """Put an address on the list (idempotent); True if it was not there yet."""
    address = normalise(channel, address)
    if suppressed_among(session, org_id, channel, [address]):
        return False
    with session.begin_nested():
        session.add(
            Suppression(
                org_id=org_id,
                channel=channel,
                address=address,
                reason=reason,
                invitation_id=invitation_id,
            )
        )
    return True


def clear(session: Session, org_id: int, address: str, *, channel: Channel | None = None) -> int:
    """An admin lifts the suppression of an address; returns how many entries were cleared."""
    orgs.get_org(session, org_id)
    channels = [channel] if channel else list(Channel)
    cleared = 0
    for each in channels:
        result = session.execute(
            update(Suppression)
            .where(
                Suppression.org_id == org_id,
                Suppression.channel == each,
                Suppression.address == normalise(each, address),
                Suppression.cleared_at.is_(None),
            )
            .values(cleared_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        cleared += result.rowcount  # type: ignore[attr-defined]
    if not cleared:
        raise NotFound(f"{address} is not suppressed in org {org_id}")
    return cleared


def active(session: Session, org_id: int, *, since: datetime | None = None) -> list[Suppression]:
    orgs.get_org(session, org_id)
    query = select(Suppression).where(
        Suppression.org_id == org_id, Suppression.cleared_at.is_(None)
    )
    if since is not None:
        query = query.where(Suppression.created_at >= since)
    return list(session.scalars(query.order_by(Suppression.created_at.desc())))


def parse_channel(value: str | None) -> Channel | None:
    if value is None:
        return None
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(f"channel {value!r} is not one of: email, sms") from None
