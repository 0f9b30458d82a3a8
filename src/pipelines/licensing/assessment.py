"""One org-day's licence report, alerts and counter fixes, from its counts (pure rules).

Per user type: its limit (:func:`.licences.licence_limit`), overage (more holders than
licences) and use at or above the org's ``near_limit_percent``, each an alert, and a fix
for a drifted cached counter. Per org: the month's price over the licences of paid types
(:func:`.pricing.quote`, the org's slabs or the standard list), a trial past its 30 days,
and for an org that fell to the Free edition after its trial, the portal's deletion 30 days
after the trial's end (a paid edition keeps the portal: a schedule left from an earlier
downgrade is cleared). Nothing here touches the database; :mod:`.reconciliation` reads the
counts and writes what this returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from portalflow.models import Edition

from . import pricing
from .licences import licence_limit

TRIAL_DAYS = timedelta(days=30)
# After a trial falls to the Free edition, the portal's details go this long after its end.
FREE_DELETION_GRACE = timedelta(days=30)

# Alert kinds (LicenceAlert.kind).
OVERAGE = "overage"
NEAR_LIMIT = "near_limit"
TRIAL_EXPIRED = "trial_expired"
DELETION_SCHEDULED = "deletion_scheduled"


@dataclass(frozen=True)
class TypeCount:
    """One user type's counts on the day, as the reconciliation's query reads them."""

    user_type_id: int
    name: str
    client_portal: bool
    cached: int
    holders: int
    licences: int  # purchased and in force that day (0 for the Client Portal)


@dataclass
class Assessment:
    """One org's report row, its alerts and its counter fixes."""

    report: dict[str, Any]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    fixes: list[dict[str, int]] = field(default_factory=list)


def assess(
    org: Any,
    types: list[TypeCount],
    day: date,
    prices: PriceBook,
    found_before: dict[int, int],
) -> Assessment:
    """One org's report row, its alerts and its counter fixes (pure; no database).

    ``found_before`` maps a user type to the counter an earlier run of the same day found
    (before fixing it): the report keeps that, so reconciling a day again rewrites the same
    report even though the counter it once corrected is now right.
    """
    edition = Edition(org.edition)
    alerts: list[dict[str, Any]] = []
    details = [_assess_type(org, edition, kind, day, found_before, alerts) for kind in types]
    fixes = [
        {"id": kind.user_type_id, "holders_cached": kind.holders}
        for kind in types
        if kind.cached != kind.holders
    ]
    trial_expired, deletion = _assess_trial(org, edition, day, alerts)
    paid = [detail for detail in details if not detail["client_portal"]]
    paid_licences = sum(detail["licences"] for detail in paid)
    report = {
        "org_id": org.id,
        "day": day,
        "edition": edition.value,
        "holders": sum(detail["holders"] for detail in paid),
        "licences": paid_licences,
        "monthly_price_cents": prices.monthly_cents(paid_licences, org.price_slabs),
        "overage": any(detail["overage"] for detail in details),
        "trial_expired": trial_expired,
        "deletion_scheduled_for": deletion,
        "counters_corrected": sum(d["cached"] != d["holders"] for d in details),
        "details": details,
    }
    return Assessment(report, alerts, fixes)


def _assess_type(
    org: Any,
    edition: Edition,
    kind: TypeCount,
    day: date,
    found_before: dict[int, int],
    alerts: list[dict[str, Any]],
) -> dict[str, Any]:
    """One user type's line of the report; its overage or near-limit alert into ``alerts``."""
    limit = licence_limit(edition, kind.client_portal, kind.licences)
    overage = kind.holders > limit
    near = limit > 0 and kind.holders * 100 >= org.near_limit_percent * limit
    if overage:
        alerts.append(
            _alert(
                org.id,
                kind.user_type_id,
                OVERAGE,
                day,
                f"{kind.name}: {kind.holders} licence holders but {limit} licences on"
                f" {day.isoformat()} ({kind.holders - limit} over)",
            )
        )
    elif near:
        alerts.append(
            _alert(
                org.id,
                kind.user_type_id,
                NEAR_LIMIT,
                day,
                f"{kind.name}: {kind.holders} of {limit} licences in use on"
                f" {day.isoformat()} (alert at {org.near_limit_percent}%)",
            )
        )
    return {
        "user_type_id": kind.user_type_id,
        "name": kind.name,
        "client_portal": kind.client_portal,
        "holders": kind.holders,
        "licences": limit,
        "cached": found_before.get(kind.user_type_id, kind.cached),
        "near_limit": near,
        "overage": overage,
    }


def _assess_trial(
    org: Any, edition: Edition, day: date, alerts: list[dict[str, Any]]
) -> tuple[bool, date | None]:
    """Whether the trial has expired, and the portal's deletion day; their alerts."""
    deletion = org.deletion_scheduled_for
    started = org.trial_started_at or org.created_at
    trial_end = started.date() + TRIAL_DAYS if started is not None else None
    if edition == Edition.TRIAL and trial_end is not None and trial_end <= day:
        alerts.append(
            _alert(
                org.id,
                None,
                TRIAL_EXPIRED,
                trial_end,
                f"the trial ended on {trial_end.isoformat()}: upgrade to a paid edition to"
                " keep the portal",
            )
        )
        return True, deletion
    if edition == Edition.FREE and org.trial_started_at is not None:
        trial_end = org.trial_started_at.date() + TRIAL_DAYS
        if trial_end <= day:
            deletion = trial_end + FREE_DELETION_GRACE
            alerts.append(
                _alert(
                    org.id,
                    None,
                    DELETION_SCHEDULED,
                    trial_end,
                    f"the trial ended on {trial_end.isoformat()} and the org is on the Free"
                    f" edition: the portal's details will be deleted on {deletion.isoformat()}",
                )
            )
    elif edition.is_paid:
        deletion = None  # upgrading keeps the portal
    return False, deletion


def _alert(
    org_id: int, user_type_id: int | None, kind: str, day: date, detail: str
) -> dict[str, Any]:
    type_part = "-" if user_type_id is None else str(user_type_id)
    return {
        "org_id": org_id,
        "user_type_id": user_type_id,
        "kind": kind,
        "day": day,
        "dedupe_key": f"{org_id}:{type_part}:{kind}:{day.isoformat()}",
        "detail": detail,
    }


class PriceBook:
    """Prices with each distinct slab list parsed once per run."""

    def __init__(self) -> None:
        self._slabs: dict[str, Any] = {}

    def monthly_cents(self, users: int, price_slabs: Any) -> int:
        if not price_slabs:
            slabs = pricing.STANDARD_SLABS
        else:
            key = json.dumps(price_slabs, sort_keys=True)
            if key not in self._slabs:
                self._slabs[key] = pricing.slabs_from_data(price_slabs)
            slabs = self._slabs[key]
        return int(pricing.quote(users, slabs).monthly_cents)
