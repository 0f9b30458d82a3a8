"""Lead conversion: a converted lead's portal user moves to a Contacts type.

Rule (PORTALS.md, "Moving users between user types"): a converted lead who is a portal user
of a Leads type moves to a Contacts type of the same invitation preference and now points
at the contact record, keeping its status; the move never pushes the target over its
licence limit (``licence_limit``). Each lead of a ``lead.converted`` event succeeds or fails
on its own, with a stable code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    CrmEventCode,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    WebhookEventType,
    utcnow,
)
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.crm_webhooks import outbox, payloads
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.licensing import licences
from portalflow.pipelines.tenancy import orgs

LEADS_MODULE = "Leads"
CONTACTS_MODULE = "Contacts"


def set_conversion_default(session: Session, org_id: int, user_type_id: int) -> PortalUserType:
    """Make a Contacts type the one converted leads go to when several could take them."""
    user_type = orgs.get_user_type(session, org_id, user_type_id)
    if user_type.module != CONTACTS_MODULE:
        raise InvalidInput(
            f"user type {user_type.name!r} is for {user_type.module}; the conversion default "
            f"must be a {CONTACTS_MODULE} user type"
        )
    if user_type.transfer_to_id is not None:
        raise InvalidInput(f"user type {user_type.name!r} is being deleted")
    session.execute(
        update(PortalUserType)
        .where(PortalUserType.org_id == org_id, PortalUserType.id != user_type.id)
        .values(conversion_default=False)
        .execution_options(synchronize_session="evaluate")
    )
    user_type.conversion_default = True
    session.flush()
    return user_type


@dataclass
class LeadOutcome:
    lead_id: str
    contact_id: str
    outcome: str  # converted | already_converted | skipped | failed
    code: str | None = None
    message: str = ""
    portal_user_id: int | None = None
    user_type_id: int | None = None
    from_user_type_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


@dataclass
class ConversionResult:
    event_id: int
    status: CrmEventStatus
    leads: list[LeadOutcome] = field(default_factory=list)
    already_handled: bool = False

    @property
    def failed(self) -> list[LeadOutcome]:
        return [lead for lead in self.leads if not lead.ok]


class _LeadFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def handle_lead_converted(
    session: Session, event_id: int, now: datetime | None = None
) -> ConversionResult:
    """Apply a ``lead.converted`` event, lead by lead (flushed, not committed).

    Payload: ``{"leads": [{"lead_id", "contact_id", "user_type_id"?}, ...]}`` or one such
    object. Each lead who is a portal user of a Leads type moves to a Contacts type of the
    same invitation preference (the given one; else the only candidate; else the org's
    conversion default; else it fails with ``user_type_choice_required``) and now points at
    the contact record, keeping its status. Leads that are not portal users of a Leads type
    are skipped. The event ends ``processed`` when no lead failed, else ``failed`` with
    ``user_type_choice_required`` (or the first failure code) and one detail line per failed
    lead; the leads that could move have moved. A processed event is not applied again; a
    failed one may be (after the admin sets a default), and converted leads stay converted.
    """
    now = now or utcnow()
    event = crm_events.get_event(session, event_id, lock=True)
    if event.kind != CrmEventKind.LEAD_CONVERTED:
        raise InvalidInput(f"CRM event {event_id} is {event.kind.value}, not lead.converted")
    if event.status == CrmEventStatus.PROCESSED:
        return ConversionResult(event.id, event.status, already_handled=True)
    result = ConversionResult(event.id, event.status)
    try:
        items = _lead_items(event.payload)
    except _LeadFailure as failure:
        crm_events.mark_failed(event, failure.code, failure.message, now)
        result.status = event.status
        session.flush()
        return result
    org = orgs.get_org(session, event.org_id)
    for item in items:
        lead_id, contact_id = str(item["lead_id"]), str(item["contact_id"])
        try:
            result.leads.append(_convert_one(session, org, item, now))
        except _LeadFailure as failure:
            result.leads.append(
                LeadOutcome(lead_id, contact_id, "failed", failure.code, failure.message)
            )
    _tell_conversions(session, event.org_id, result.leads, now)
    failed = result.failed
    if failed:
        codes = [lead.code for lead in failed]
        code = (
            CrmEventCode.USER_TYPE_CHOICE_REQUIRED
            if CrmEventCode.USER_TYPE_CHOICE_REQUIRED in codes
            else str(codes[0])
        )
        lines = [f"{len(failed)} of {len(result.leads)} lead(s) failed:"]
        lines += [f"lead {lead.lead_id}: {lead.code}: {lead.message}" for lead in failed]
        crm_events.mark_failed(event, code, "\n".join(lines), now)
    else:
        counts: dict[str, int] = {}
        for lead in result.leads:
            counts[lead.outcome] = counts.get(lead.outcome, 0) + 1
        crm_events.mark_processed(
            event, ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())), now
        )
    result.status = event.status
    session.flush()
    return result


def apply_lead_converted(session: Session, event_id: int, now: datetime | None = None) -> list[int]:
    """:func:`handle_lead_converted` in the CRM event dispatcher's shape (no invitations)."""
    handle_lead_converted(session, event_id, now)
    return []


def _lead_items(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        raise _LeadFailure(CrmEventCode.INVALID_PAYLOAD, "the payload must be a JSON object")
    items = payload.get("leads", [payload] if "lead_id" in payload else None)
    if not isinstance(items, list) or not items:
        raise _LeadFailure(
            CrmEventCode.INVALID_PAYLOAD,
            'the payload needs "leads": [{"lead_id", "contact_id"}, ...]',
        )
    for item in items:
        if not isinstance(item, dict) or not item.get("lead_id") or not item.get("contact_id"):
            raise _LeadFailure(
                CrmEventCode.INVALID_PAYLOAD, f"each lead needs lead_id and contact_id: {item!r}"
            )
        chosen = item.get("user_type_id")
        if chosen is not None and (isinstance(chosen, bool) or not isinstance(chosen, int)):
            raise _LeadFailure(
                CrmEventCode.INVALID_PAYLOAD, f"user_type_id must be an integer: {item!r}"
            )
    return items


def _record(session: Session, org_id: int, crm_id: str) -> CrmRecord | None:
    return session.scalar(
        select(CrmRecord).where(CrmRecord.org_id == org_id, CrmRecord.crm_id == crm_id)
    )


def _user_of(session: Session, record: CrmRecord | None) -> PortalUser | None:
    if record is None:
        return None
    return session.scalar(
        select(PortalUser).where(PortalUser.record_id == record.id).with_for_update()
    )


def _convert_one(session: Session, org: Org, item: dict[str, Any], now: datetime) -> LeadOutcome:
    lead_id, contact_id = str(item["lead_id"]), str(item["contact_id"])
    outcome = LeadOutcome(lead_id, contact_id, "skipped")
    contact = _record(session, org.id, contact_id)
    user = _user_of(session, _record(session, org.id, lead_id))
    if user is None:
        # Already converted (a retried event)? The user then points at the contact.
        moved = _user_of(session, contact)
        moved_type = session.get(PortalUserType, moved.user_type_id) if moved else None
        if moved is not None and moved_type is not None and moved_type.module == CONTACTS_MODULE:
            outcome.outcome, outcome.portal_user_id = "already_converted", moved.id
            outcome.user_type_id = moved.user_type_id
            outcome.message = "the portal user already points at the contact"
            return outcome
        outcome.message = "the lead is not a portal user"
        return outcome
    source = session.get(PortalUserType, user.user_type_id)
    assert source is not None
    outcome.portal_user_id = user.id
    if user.status == PortalUserStatus.REMOVED:
        outcome.message = "the lead's portal user was removed"
        return outcome
    if source.module != LEADS_MODULE:
        outcome.message = f"the lead's user type {source.name!r} is for {source.module}"
        return outcome
    if contact is None:
        raise _LeadFailure(
            CrmEventCode.RECORD_MISSING, f"contact {contact_id} does not exist in the org"
        )
    if contact.module != CONTACTS_MODULE:
        raise _LeadFailure(
            CrmEventCode.RECORD_NOT_A_CONTACT, f"record {contact_id} is a {contact.module} record"
        )
    if _user_of(session, contact) is not None:
        raise _LeadFailure(
            CrmEventCode.CONTACT_ALREADY_PORTAL_USER,
            f"contact {contact_id} is already a portal user",
        )
    target = _conversion_target(session, org, source, item.get("user_type_id"))
    licences.lock_user_type(session, target.id)
    if user.status not in licences.NON_HOLDING_STATUSES:
        capacity = licences.remaining_capacity(session, org, target)
        if capacity < 1:
            raise _LeadFailure(
                CrmEventCode.LICENCE_LIMIT, f"user type {target.name!r} has no licence left"
            )
    moved_from = user.user_type_id
    user.record_id = contact.id
    user.user_type_id = target.id
    user.updated_at = now
    session.flush()
    licences.sync_holders(session, [moved_from, target.id])
    outcome.outcome, outcome.user_type_id = "converted", target.id
    outcome.from_user_type_id = moved_from
    outcome.message = f"moved to user type {target.name!r}"
    return outcome


def _tell_conversions(
    session: Session, org_id: int, leads: Sequence[LeadOutcome], now: datetime
) -> None:
    """The CRM hears of each converted lead, and of each whose Contacts type must be chosen.

    A converted lead's portal user moved to another user type, so it is also a
    ``user.transferred`` (told first: the user's events keep their order).
    """
    converted = {
        lead.portal_user_id: lead.from_user_type_id
        for lead in leads
        if lead.outcome == "converted" and lead.portal_user_id is not None
    }
    outbox.user_events(
        session,
        WebhookEventType.USER_TRANSFERRED,
        list(converted),
        org_id=org_id,
        extra={uid: {"from_user_type_id": from_type} for uid, from_type in converted.items()},
        now=now,
    )
    told = []
    for lead in leads:
        if lead.outcome == "converted":
            event_type = WebhookEventType.LEAD_CONVERSION_DONE
        elif lead.code == CrmEventCode.USER_TYPE_CHOICE_REQUIRED:
            event_type = WebhookEventType.LEAD_CONVERSION_CHOICE_REQUIRED
        else:
            continue
        data = {
            "lead_id": lead.lead_id,
            "contact_id": lead.contact_id,
            "record_id": lead.contact_id,
            "portal_user_id": lead.portal_user_id,
            "user_type_id": lead.user_type_id,
            "from_user_type_id": lead.from_user_type_id,
            "code": lead.code,
            "detail": lead.message,
        }
        key = payloads.order_key(lead.portal_user_id, lead.lead_id)
        told.append(outbox.Event(event_type, org_id, data, key))
    outbox.emit(session, told, now=now)


def _conversion_target(
    session: Session, org: Org, source: PortalUserType, chosen: int | None
) -> PortalUserType:
    candidates = list(
        session.scalars(
            select(PortalUserType)
            .where(
                PortalUserType.org_id == org.id,
                PortalUserType.module == CONTACTS_MODULE,
                PortalUserType.invitation_preference == source.invitation_preference,
                PortalUserType.transfer_to_id.is_(None),
            )
            .order_by(PortalUserType.id)
        )
    )
    preference = source.invitation_preference.value
    if chosen is not None:
        for candidate in candidates:
            if candidate.id == chosen:
                return candidate
        raise _LeadFailure(
            CrmEventCode.INVALID_USER_TYPE,
            f"user type {chosen} is not a {CONTACTS_MODULE} user type inviting by {preference}"
            f" in org {org.id}",
        )
    if not candidates:
        raise _LeadFailure(
            CrmEventCode.NO_CONTACTS_USER_TYPE,
            f"the org has no {CONTACTS_MODULE} user type inviting by {preference}",
        )
    if len(candidates) == 1:
        return candidates[0]
    defaults = [candidate for candidate in candidates if candidate.conversion_default]
    if len(defaults) == 1:
        return defaults[0]
    names = ", ".join(repr(candidate.name) for candidate in candidates)
    raise _LeadFailure(
        CrmEventCode.USER_TYPE_CHOICE_REQUIRED,
        f"choose one of {names} (or set a conversion default with "
        "`portalflow user-types set-conversion-default`)",
    )


def lead_payload(
    leads: Sequence[str], contacts: Sequence[str], user_types: Sequence[int] = ()
) -> dict[str, Any]:
    """A lead.converted payload from paired lists; one user type applies to every lead."""
    if not leads or len(leads) != len(contacts):
        raise InvalidInput("give one contact for every lead (--lead L --contact C, repeated)")
    if len(user_types) not in (0, 1, len(leads)):
        raise InvalidInput("give no user type, one for every lead, or one for all of them")
    items: list[dict[str, Any]] = []
    for index, (lead, contact) in enumerate(zip(leads, contacts, strict=True)):
        item: dict[str, Any] = {"lead_id": lead, "contact_id": contact}
        if user_types:
            item["user_type_id"] = user_types[index if len(user_types) > 1 else 0]
        items.append(item)
    return {"leads": items}
