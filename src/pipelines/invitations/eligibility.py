"""Who may be invited: one stable reason code per refused record, decided a chunk at a time.

A chunk costs a fixed handful of queries whatever its size: one for the records, one for
existing portal users, and the licence counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    CONSENT_BASIS,
    RECORD_VALUE_COLUMNS,
    Channel,
    CrmRecord,
    CrmUser,
    InvitationPreference,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    ReasonCode,
    RecordAccess,
    RecordValues,
)
from portalflow.pipelines.bulk_sql import among
from portalflow.pipelines.content import sms_templates
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.users import addresses, phones

from . import suppressions


@dataclass(frozen=True)
class Decision:
    """The verdict for one requested CRM id; ``reason`` is None when it may be invited."""

    crm_id: str
    record: RecordValues | None
    address: str | None
    reason: ReasonCode | None = None
    detail: str | None = None

    @property
    def eligible(self) -> bool:
        return self.reason is None


def decide(
    session: Session,
    *,
    org: Org,
    user_type: PortalUserType,
    inviter: CrmUser,
    crm_ids: Sequence[str],
    extra_disposable_domains: Iterable[str] = (),
) -> list[Decision]:
    """Decide every id of a chunk, in order, on every rule but the licence limit.

    Needs no lock: the caller then takes the user type's licence lock and calls ``settle``,
    so the lock is held for a few short statements, not through the whole decision.
    """
    records = {
        record.crm_id: record
        for record in (
            RecordValues(*row)
            for row in session.execute(
                select(*RECORD_VALUE_COLUMNS).where(
                    CrmRecord.org_id == org.id, among(session, CrmRecord.crm_id, crm_ids)
                )
            )
        )
    }
    portal_record_ids = _portal_record_ids(session, [record.id for record in records.values()])
    by_sms = user_type.invitation_preference == InvitationPreference.PHONE
    context = _Context(
        org=org,
        user_type=user_type,
        inviter=inviter,
        portal_record_ids=portal_record_ids,
        extra_disposable=tuple(extra_disposable_domains),
        sms_blocked=by_sms and not sms_templates.sms_ready(session, org.id),
    )
    decisions = [_decide_one(crm_id, records.get(crm_id), context) for crm_id in crm_ids]
    return _refuse_suppressed(session, org, Channel.SMS if by_sms else Channel.EMAIL, decisions)


def settle(
    session: Session, org: Org, user_type: PortalUserType, decisions: list[Decision]
) -> list[Decision]:
    """The decisions that need the user type's licence lock (held by the caller).

    A record another run made a portal user since ``decide`` read them is refused now, and
    the licences left are spent in order.
    """
    eligible_ids = [d.record.id for d in decisions if d.eligible and d.record is not None]
    taken = _portal_record_ids(session, eligible_ids) if eligible_ids else set()
    if taken:
        decisions = [
            Decision(
                d.crm_id,
                d.record,
                d.address,
                ReasonCode.ALREADY_PORTAL_USER,
                "the record is already a portal user",
            )
            if d.eligible and d.record is not None and d.record.id in taken
            else d
            for d in decisions
        ]
    return _apply_licence_limit(session, org, user_type, decisions)


def _portal_record_ids(session: Session, record_ids: Sequence[int]) -> set[int]:
    return set(
        session.scalars(
            select(PortalUser.record_id).where(
                among(session, PortalUser.record_id, record_ids),
                PortalUser.status != PortalUserStatus.REMOVED,
            )
        )
    )


@dataclass(frozen=True)
class _Context:
    """What every record of a chunk is checked against."""

    org: Org
    user_type: PortalUserType
    inviter: CrmUser
    portal_record_ids: set[int]
    extra_disposable: tuple[str, ...]
    sms_blocked: bool


def _decide_one(crm_id: str, record: RecordValues | None, context: _Context) -> Decision:
    user_type, inviter = context.user_type, context.inviter

    def refuse(reason: ReasonCode, detail: str, address: str | None = None) -> Decision:
        return Decision(crm_id, record, address, reason, detail)

    # Permissions come before anything that would reveal the record's state.
    if record is None or record.deleted:
        return refuse(ReasonCode.RECORD_MISSING, f"no record with CRM id {crm_id}")
    if record.module != user_type.module:
        return refuse(
            ReasonCode.RECORD_MISSING,
            f"{crm_id} is a {record.module} record; {user_type.name} invites {user_type.module}",
        )
    if record.in_recycle_bin:
        return refuse(ReasonCode.IN_RECYCLE_BIN, "the record is in the recycle bin")
    if user_type.module not in (inviter.module_permissions or []):
        return refuse(
            ReasonCode.NO_MODULE_PERMISSION, f"{inviter.email} has no {user_type.module} permission"
        )
    if inviter.record_access == RecordAccess.OWNED and record.owner_id != inviter.id:
        return refuse(ReasonCode.NO_RECORD_PERMISSION, f"{inviter.email} does not own the record")
    if context.sms_blocked:
        return refuse(
            ReasonCode.SMS_TEMPLATES_NOT_APPROVED,
            f"{user_type.name} invites by SMS; not every SMS template has an approved DLT mapping",
        )
    if record.id in context.portal_record_ids:
        return refuse(ReasonCode.ALREADY_PORTAL_USER, "the record is already a portal user")
    if record.approval_locked:
        return refuse(ReasonCode.AWAITING_APPROVAL, "locked by an approval process")
    if record.review_locked:
        return refuse(ReasonCode.UNDER_REVIEW, "waiting for review")
    if record.processing_basis == CONSENT_BASIS and not record.consent_given:
        return refuse(ReasonCode.NO_CONSENT, "consent is the processing basis; none was given")
    if user_type.invitation_preference == InvitationPreference.PHONE:
        verdict = phones.indian_mobile(_field_text(record, user_type.invitation_field))
        return Decision(crm_id, record, verdict.e164, verdict.reason, verdict.detail)
    return _decide_address(crm_id, record, context.org, user_type, context.extra_disposable)


def _field_text(record: RecordValues, field: str) -> str:
    value = record.field_value(field)
    return str(value).strip() if value is not None else ""


def _decide_address(
    crm_id: str,
    record: RecordValues,
    org: Org,
    user_type: PortalUserType,
    extra_disposable: tuple[str, ...],
) -> Decision:
    address = _field_text(record, user_type.invitation_field)
    if not address:
        return Decision(
            crm_id,
            record,
            None,
            ReasonCode.INVALID_ADDRESS,
            f"the {user_type.invitation_field} field is empty",
        )
    problem = addresses.email_problem(address)
    if problem is not None:
        return Decision(crm_id, record, address, *problem)
    domain = addresses.domain_of(address)
    if addresses.is_within(domain, [org.company_domain]):
        return Decision(
            crm_id,
            record,
            address,
            ReasonCode.COMPANY_DOMAIN,
            f"{domain} is the org's own domain ({org.company_domain})",
        )
    if addresses.is_disposable(domain, extra_disposable):
        return Decision(
            crm_id,
            record,
            address,
            ReasonCode.ANONYMOUS_DOMAIN,
            f"{domain} is a disposable or anonymous domain",
        )
    return Decision(crm_id, record, address)


def _refuse_suppressed(
    session: Session, org: Org, channel: Channel, decisions: list[Decision]
) -> list[Decision]:
    """Addresses on the org's suppression list get no invitation until an admin clears them."""
    blocked = suppressions.suppressed_among(
        session, org.id, channel, [d.address for d in decisions if d.eligible and d.address]
    )
    if not blocked:
        return decisions
    return [
        Decision(
            d.crm_id,
            d.record,
            d.address,
            ReasonCode.SUPPRESSED,
            f"{d.address} is on the suppression list (clear it with portalflow suppressions)",
        )
        if d.eligible and d.address and suppressions.normalise(channel, d.address) in blocked
        else d
        for d in decisions
    ]


def _apply_licence_limit(
    session: Session, org: Org, user_type: PortalUserType, decisions: list[Decision]
) -> list[Decision]:
    remaining = licences.remaining_capacity(session, org, user_type)
    limited = []
    for decision in decisions:
        if decision.eligible:
            if remaining <= 0:
                decision = Decision(
                    decision.crm_id,
                    decision.record,
                    decision.address,
                    ReasonCode.LICENCE_LIMIT,
                    f"{user_type.name} has no licence left (see portalflow licences purchase)",
                )
            else:
                remaining -= 1
        limited.append(decision)
    return limited
