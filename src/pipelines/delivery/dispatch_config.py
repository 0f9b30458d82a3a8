"""What a dispatch needs from the settings, as plain values, and the SMS link domain it picks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from portalflow.models import DataCentre, Org

from .claims import DEFAULT_LEASE, Lease
from .outgoing_email import DEFAULT_FROM

DEFAULT_VARIABLE_LIMITS = {"var": 30}


@dataclass(frozen=True)
class DispatchConfig:
    """What a dispatch needs from the settings, as plain values."""

    portal_base_url: str
    max_attempts: int = 5
    default_from: str = DEFAULT_FROM
    # Data centre -> whitelisted short-link domain for SMS links.
    short_link_domains: Mapping[str, str] = field(
        default_factory=lambda: {dc.value: f"{dc.value}.zcrm.to" for dc in DataCentre}
    )
    variable_limits: Mapping[str, int] = field(default_factory=lambda: DEFAULT_VARIABLE_LIMITS)
    lease: Lease = DEFAULT_LEASE
    # Signs each email's opt-out link (``link_keys.link_key``); None: emails carry none.
    link_key: bytes | None = None


def short_link_domain(session: Session, org_id: int, config: DispatchConfig) -> str:
    data_centre = session.get_one(Org, org_id).data_centre
    return config.short_link_domains.get(data_centre.value, f"{data_centre.value}.zcrm.to")
