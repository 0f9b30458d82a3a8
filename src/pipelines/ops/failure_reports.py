"""Failure reports: who failed, and why, across an org, a bulk run or a user type.

A *failed invitee* is either

- an invitation with status ``failed``: refused before the send (a `ReasonCode`), or failed
  at the provider for good (``technical_failure`` when retries ran out, ``dlt_mismatch``,
  a provider's permanent refusal ...); its reason is ``failure_code``; or
- an invitation the provider accepted (``sent``, or ``expired`` since) whose later outcome
  is a permanent bounce or a complaint; its reason is ``outcome_code``.

Each failure falls in one *group* (`by_outcome_class` of the report):

========================  ============================================================
``refused``               refused before any send, with one of the spec's reason codes
``retries_exhausted``     temporary trouble outlasted every retry (``technical_failure``)
``provider``              any other failure at the provider (refusal, DLT mismatch ...)
``permanent``             the provider accepted it, then it bounced for good
``complained``            the provider accepted it, then the recipient marked it as spam
========================  ============================================================

A report tells the present: a failure is *resolved* when its record was invited again
since (a later invitation that did not fail: queued, sent, accepted ...) or its portal
user is now confirmed (``invited_again`` / ``confirmed`` in an invitee's ``resolved``).
Resolved failures are counted apart (``resolved``) and left out of every other count and
of the invitees unless ``FailureFilter.include_resolved``.

A report costs a fixed handful of queries whatever the number of rows: the org (and the
run or user type filtered on), one GROUP BY for every count, one for the invitees shown.

Example::

    report = failure_report(session, FailureFilter(org_id=1, bulk_run_id=12), limit=100)
    report["by_reason"]       # {"company_domain": 40, "bounce_no_email": 3, ...}
    rows_for_csv(report)      # one flat dict per invitee shown
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from portalflow.models import (
    OUTCOME_DESCRIPTIONS,
    BulkRun,
    EmailKind,
    Invitation,
    InvitationStatus,
    OutcomeClass,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    ReasonCode,
    SendFailureCode,
    describe_failure,
)
from portalflow.pipelines.errors import InvalidInput, NotFound
from portalflow.pipelines.tenancy import orgs

DEFAULT_LIMIT = 1000

# The groups of `by_outcome_class`.
REFUSED = "refused"
RETRIES_EXHAUSTED = "retries_exhausted"
PROVIDER = "provider"

# Why a failure is resolved (an invitee's ``resolved``).
INVITED_AGAIN = "invited_again"
CONFIRMED = "confirmed"

UNKNOWN_REASON = "unknown"  # a failed row without a code (should not happen; shown, not hidden)

# Statuses in which a provider-accepted invitation may carry a bounce or a complaint.
ACCEPTED_BY_PROVIDER = (InvitationStatus.SENT, InvitationStatus.EXPIRED)
# Provider outcomes after acceptance that make the invitee a failure.
FAILED_OUTCOMES = (OutcomeClass.PERMANENT, OutcomeClass.COMPLAINED)

_REASON_CODES = frozenset(code.value for code in ReasonCode)
_SEND_FAILURE_CODES = frozenset(code.value for code in SendFailureCode)

CSV_FIELDS = (
    "invitation_id",
    "crm_id",
    "address",
    "user_type_id",
    "user_type",
    "bulk_run_id",
    "group",
    "reason",
    "meaning",
    "attempts",
    "detail",
    "at",
    "resolved",
)


@dataclass(frozen=True)
class FailureFilter:
    """Which failures to report: always one org, optionally narrowed."""

    org_id: int
    bulk_run_id: int | None = None
    user_type_id: int | None = None
    since: datetime | None = None  # invitations created at or after (naive means UTC)
    include_resolved: bool = False  # also count and list failures resolved since


def failure_group(status: str, failure_code: str | None, outcome_class: str | None) -> str:
    """The `by_outcome_class` group of one failed invitee."""
    if status == InvitationStatus.FAILED:
        if failure_code in _REASON_CODES:
            return REFUSED
        if failure_code == SendFailureCode.TECHNICAL_FAILURE:
            return RETRIES_EXHAUSTED
        return PROVIDER
    return str(outcome_class)


def describe_reason(code: str) -> str:
    """The admin-facing meaning of a reason: pre-send and send codes, then provider outcomes."""
    if code in _REASON_CODES or code in _SEND_FAILURE_CODES:
        return describe_failure(code)
    return OUTCOME_DESCRIPTIONS.get(code) or describe_failure(code)


def failure_report(
    session: Session, filter: FailureFilter, *, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """Counts of the failed invitees by reason, group and user type, and the newest of them.

    Raises `NotFound` for an unknown org, or a bulk run or user type of another org, and
    `InvalidInput` for a negative ``limit``. ``limit`` bounds only the invitees listed; every
    count covers all of them.
    """
    if limit < 0:
        raise InvalidInput("the limit must be 0 or more")
    _check_filter(session, filter)
    since = _as_utc(filter.since)
    where = _conditions(filter, since)
    resolution = _resolution()
    counts = _count(session, where, resolution, filter.include_resolved)
    type_names = {type_id: name for type_id, name in counts.by_user_type}
    return {
        "org_id": filter.org_id,
        "filter": {
            "bulk_run_id": filter.bulk_run_id,
            "user_type_id": filter.user_type_id,
            "since": since.isoformat() if since else None,
            "include_resolved": filter.include_resolved,
        },
        "total_failed": sum(counts.by_reason.values()),
        "resolved": counts.resolved,
        "by_reason": _most_first(counts.by_reason),
        "by_outcome_class": _most_first(counts.by_group),
        "by_user_type": [
            {"user_type_id": type_id, "name": name, "failed": n}
            for (type_id, name), n in sorted(
                counts.by_user_type.items(), key=lambda r: (-r[1], r[0][0])
            )
        ],
        "limit": limit,
        "invitees": (
            _invitees(
                session,
                where if filter.include_resolved else [*where, resolution.is_(None)],
                resolution,
                type_names,
                limit,
            )
            if limit
            else []
        ),
    }


def _check_filter(session: Session, filter: FailureFilter) -> None:
    """`NotFound` for an unknown org, or a bulk run or user type of another org."""
    orgs.get_org(session, filter.org_id)
    if filter.bulk_run_id is not None:
        run = session.get(BulkRun, filter.bulk_run_id)
        if run is None or run.org_id != filter.org_id:
            raise NotFound(f"bulk run {filter.bulk_run_id} does not exist in org {filter.org_id}")
    if filter.user_type_id is not None:
        orgs.get_user_type(session, filter.org_id, filter.user_type_id)


@dataclass
class _Counts:
    """The failed invitees counted by reason, group and user type; the resolved apart."""

    by_reason: Counter[str] = field(default_factory=Counter)
    by_group: Counter[str] = field(default_factory=Counter)
    by_user_type: Counter[tuple[int, str]] = field(default_factory=Counter)
    resolved: int = 0


def _count(
    session: Session,
    where: list[ColumnElement[bool]],
    resolution: ColumnElement[Any],
    include_resolved: bool,
) -> _Counts:
    """Every count of the report, from one GROUP BY."""
    rows = session.execute(
        select(
            Invitation.status,
            Invitation.failure_code,
            Invitation.outcome_class,
            Invitation.outcome_code,
            Invitation.user_type_id,
            PortalUserType.name,
            resolution.label("resolved"),
            func.count().label("n"),
        )
        .join(PortalUserType, PortalUserType.id == Invitation.user_type_id)
        .where(*where)
        .group_by(
            Invitation.status,
            Invitation.failure_code,
            Invitation.outcome_class,
            Invitation.outcome_code,
            Invitation.user_type_id,
            PortalUserType.name,
            resolution,
        )
    ).all()
    counts = _Counts()
    for row in rows:
        if row.resolved is not None:
            counts.resolved += row.n
            if not include_resolved:
                continue
        counts.by_reason[_reason(row.status, row.failure_code, row.outcome_code)] += row.n
        counts.by_group[failure_group(row.status, row.failure_code, row.outcome_class)] += row.n
        counts.by_user_type[(row.user_type_id, row.name)] += row.n
    return counts


def rows_for_csv(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per invitee of ``report``, keyed by `CSV_FIELDS`; ``None`` becomes ``""``."""
    return [
        {field: "" if invitee.get(field) is None else invitee[field] for field in CSV_FIELDS}
        for invitee in report["invitees"]
    ]


_INVITATION_KINDS = (EmailKind.ACCEPT_INVITATION, EmailKind.CONFIRM_EMAIL)


def _is_failure(invitation: Any) -> ColumnElement[bool]:
    """Whether an invitation (``Invitation`` or an alias) is a failed invitee."""
    return or_(
        invitation.status == InvitationStatus.FAILED,
        and_(
            invitation.status.in_(ACCEPTED_BY_PROVIDER),
            # Never NULL, so NOT of this is true for a row without an outcome.
            invitation.outcome_class.is_not(None),
            invitation.outcome_class.in_(FAILED_OUTCOMES),
        ),
    )


def _resolution() -> ColumnElement[Any]:
    """Why a failed invitation no longer stands: ``confirmed``, ``invited_again`` or NULL."""
    later = aliased(Invitation)
    invited_again = exists().where(
        later.org_id == Invitation.org_id,
        later.crm_id == Invitation.crm_id,
        later.id > Invitation.id,
        not_(_is_failure(later)),
        # A sign-in message (code, reset) is resolved only by a later one of its own kind.
        or_(
            and_(later.kind.in_(_INVITATION_KINDS), Invitation.kind.in_(_INVITATION_KINDS)),
            later.kind == Invitation.kind,
        ),
    )
    confirmed = exists().where(
        Invitation.kind.in_(_INVITATION_KINDS),  # a confirmed user's failed reset still stands
        PortalUser.org_id == Invitation.org_id,
        PortalUser.record_id == Invitation.record_id,
        PortalUser.status == PortalUserStatus.CONFIRMED,
    )
    return case((confirmed, CONFIRMED), (invited_again, INVITED_AGAIN), else_=None)


def _conditions(filter: FailureFilter, since: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Invitation.org_id == filter.org_id,
        _is_failure(Invitation),
    ]
    if filter.bulk_run_id is not None:
        conditions.append(Invitation.bulk_run_id == filter.bulk_run_id)
    if filter.user_type_id is not None:
        conditions.append(Invitation.user_type_id == filter.user_type_id)
    if since is not None:
        conditions.append(Invitation.created_at >= since)
    return conditions


def _invitees(
    session: Session,
    where: list[ColumnElement[bool]],
    resolution: ColumnElement[Any],
    type_names: dict[int, str],
    limit: int,
) -> list[dict[str, Any]]:
    """The failed invitees, most recent failure first."""
    failed_at = case(
        (Invitation.status == InvitationStatus.FAILED, Invitation.updated_at),
        else_=func.coalesce(Invitation.outcome_at, Invitation.updated_at),
    )
    rows = session.execute(
        select(
            Invitation.id,
            Invitation.crm_id,
            Invitation.kind,
            Invitation.address,
            Invitation.user_type_id,
            Invitation.bulk_run_id,
            Invitation.status,
            Invitation.failure_code,
            Invitation.failure_detail,
            Invitation.outcome_class,
            Invitation.outcome_code,
            Invitation.outcome_raw,
            Invitation.outcome_at,
            Invitation.attempts,
            Invitation.updated_at,
            resolution.label("resolved"),
        )
        .where(*where)
        .order_by(failed_at.desc(), Invitation.id.desc())
        .limit(limit)
    ).all()
    invitees = []
    for row in rows:
        failed = row.status == InvitationStatus.FAILED
        reason = _reason(row.status, row.failure_code, row.outcome_code)
        at = row.updated_at if failed else (row.outcome_at or row.updated_at)
        invitees.append(
            {
                "invitation_id": row.id,
                "crm_id": row.crm_id,
                "kind": row.kind.value,  # an invitation, or a sign-in code or reset message
                "address": row.address,
                "user_type_id": row.user_type_id,
                "user_type": type_names.get(row.user_type_id),
                "bulk_run_id": row.bulk_run_id,
                "group": failure_group(row.status, row.failure_code, row.outcome_class),
                "reason": reason,
                "meaning": describe_reason(reason),
                "attempts": row.attempts,
                "detail": (row.failure_detail or row.outcome_raw) if failed else row.outcome_raw,
                "at": at.isoformat() if at else None,
                "resolved": row.resolved,
            }
        )
    return invitees


def _reason(status: str, failure_code: str | None, outcome_code: str | None) -> str:
    """failure_code for failed rows, outcome_code for bounced or complained ones."""
    code = failure_code if status == InvitationStatus.FAILED else outcome_code
    return code or UNKNOWN_REASON


def _most_first(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
