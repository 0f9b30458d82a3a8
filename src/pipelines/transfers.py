"""Moving portal users between user types: transfers, transfer-and-delete, lead conversion.

Rules (PORTALS.md, "Moving users between user types"):

- users move only between types of the same invitation preference (and the same module: a
  Vendors record does not belong in a Contacts type); otherwise nobody moves;
- a transfer keeps each user's status and confirmation; the state machine says who may be
  transferred (confirmed, login suspended, deactivated);
- a transfer never pushes the target over its licence limit (``license_limit``);
- deleting a type that has users is "transfer and delete": every user moves, then the type
  goes. The Client Portal type cannot be deleted;
- a converted lead who is a portal user of a Leads type moves to a Contacts type of the same
  invitation preference and now points at the contact record.

Transfer and delete runs in committed batches. Every batch moves its rows in one
transaction and the type row exists until nothing references it, so a crash between
batches leaves every user with a type; calling :func:`continue_transfer_and_delete` again
finishes the job. Rows other than users that name the type (invitations, bulk runs: the
history) are moved to the target type too, and the type's own email templates are deleted
with it (the target keeps its own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, delete, func, select, update
from sqlalchemy.orm import Session

from portalflow.models import (
    Base,
    CrmEventKind,
    CrmEventStatus,
    CrmRecord,
    EmailTemplate,
    Org,
    PortalUser,
    PortalUserStatus,
    PortalUserType,
    utcnow,
)

from . import crm_events, licences, lifecycle, orgs
from .access import config as access_config
from .errors import InvalidInput
from .lifecycle import Action, InvalidTransition

LEADS_MODULE = "Leads"
CONTACTS_MODULE = "Contacts"
UPDATE_CHUNK = 500

# Stable per-lead failure codes of a lead.converted event.
CHOICE_REQUIRED = "user_type_choice_required"
RECORD_MISSING = "record_missing"
NOT_A_CONTACT = "record_not_a_contact"
INVALID_USER_TYPE = "invalid_user_type"
NO_CANDIDATE = "no_contacts_user_type"
CONTACT_TAKEN = "contact_already_portal_user"
LICENSE_LIMIT = "license_limit"
INVALID_PAYLOAD = "invalid_payload"


# ---------------------------------------------------------------------------------------
# Transfers


@dataclass
class TransferResult:
    """Who moved, and who did not and why (the others moved)."""

    moved: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # portal user id -> why


def transfer_users(
    session: Session,
    org_id: int,
    user_ids: Sequence[int],
    to_user_type_id: int,
    now: datetime | None = None,
) -> TransferResult:
    """Move users to another type, keeping status and confirmation (flushed, not committed).

    Refused as a whole (InvalidInput, nobody moved) when a user's type has another
    invitation preference or module than the target, when the target is being deleted, or
    when the users who hold a licence would not fit in the target (``license_limit``).
    Refused per user: unknown ids, users already of the target, and statuses the state
    machine does not transfer (invited, removed).
    """
    now = now or utcnow()
    org = orgs.get_org(session, org_id)
    target = orgs.get_user_type(session, org_id, to_user_type_id)
    if target.transfer_to_id is not None:
        raise InvalidInput(
            f"user type {target.name!r} is being deleted; transfer the users to another type"
        )
    wanted = list(dict.fromkeys(user_ids))
    result = TransferResult()
    if not wanted:
        return result
    licences.lock_user_type(session, target.id)
    rows = session.execute(
        select(PortalUser.id, PortalUser.status, PortalUser.user_type_id)
        .where(PortalUser.org_id == org_id, PortalUser.id.in_(wanted))
        .order_by(PortalUser.id)
        .with_for_update()
    ).all()
    found = {row.id: row for row in rows}
    for type_id in sorted({row.user_type_id for row in rows} - {target.id}):
        _check_compatible(orgs.get_user_type(session, org_id, type_id), target)
    allowed: list[int] = []
    holders = 0
    for user_id in wanted:
        row = found.get(user_id)
        if row is None:
            result.refused[user_id] = f"portal user {user_id} does not exist in org {org_id}"
        elif row.user_type_id == target.id:
            result.refused[user_id] = (
                f"portal user {user_id} is already of user type {target.name!r}"
            )
        elif (row.status, Action.TRANSFER) not in lifecycle.TRANSITIONS:
            result.refused[user_id] = str(InvalidTransition(user_id, row.status, Action.TRANSFER))
        else:
            allowed.append(user_id)
            holders += row.status not in licences.NON_HOLDING_STATUSES
    _check_capacity(session, org, target, holders)
    for ids in _chunks(allowed, UPDATE_CHUNK):
        session.execute(
            update(PortalUser)
            .where(PortalUser.id.in_(ids))
            .values(user_type_id=target.id, updated_at=now)
            .execution_options(synchronize_session="evaluate")
        )
    result.moved.extend(allowed)
    session.flush()
    moved_from = {found[user_id].user_type_id for user_id in allowed}
    licences.sync_holders(session, moved_from | ({target.id} if allowed else set()))
    return result


def _check_compatible(source: PortalUserType, target: PortalUserType) -> None:
    if source.invitation_preference != target.invitation_preference:
        raise InvalidInput(
            f"user type {source.name!r} invites by {source.invitation_preference.value}, "
            f"{target.name!r} by {target.invitation_preference.value}: users move only between "
            "types with the same invitation preference; nobody was moved"
        )
    if source.module != target.module:
        raise InvalidInput(
            f"user type {source.name!r} is for {source.module} records, {target.name!r} for "
            f"{target.module}: users move only between types of the same module; "
            "nobody was moved"
        )


def _check_capacity(session: Session, org: Org, target: PortalUserType, holders: int) -> None:
    """Refuse (``license_limit``) when ``holders`` more licence holders do not fit."""
    if holders == 0:
        return
    capacity = licences.remaining_capacity(session, org, target)
    if holders > capacity:
        raise InvalidInput(
            f"{LICENSE_LIMIT}: user type {target.name!r} has {capacity} licence(s) left and "
            f"{holders} of the users to move hold one; nobody was moved"
        )


# ---------------------------------------------------------------------------------------
# Transfer and delete


def start_transfer_and_delete(
    session: Session, org_id: int, user_type_id: int, to_user_type_id: int
) -> None:
    """Mark ``user_type_id`` for deletion into ``to_user_type_id`` (flushed, not committed).

    Starting again with the same target is a no-op (resume with
    :func:`continue_transfer_and_delete`); another target is refused while one is set.
    """
    org = orgs.get_org(session, org_id)
    source = orgs.get_user_type(session, org_id, user_type_id)
    target = orgs.get_user_type(session, org_id, to_user_type_id)
    if source.is_client_portal:
        raise InvalidInput("the Client Portal user type cannot be deleted")
    if source.id == target.id:
        raise InvalidInput("a user type cannot be transferred into itself; choose another target")
    licences.lock_user_type(session, source.id)
    session.refresh(source)
    if source.transfer_to_id is not None:
        if source.transfer_to_id == target.id:
            return
        raise InvalidInput(
            f"user type {source.name!r} is already being deleted into user type "
            f"{source.transfer_to_id}; finish that first"
        )
    if target.transfer_to_id is not None:
        raise InvalidInput(f"user type {target.name!r} is itself being deleted; choose another")
    incoming = session.scalar(
        select(PortalUserType.name).where(PortalUserType.transfer_to_id == source.id).limit(1)
    )
    if incoming is not None:
        raise InvalidInput(
            f"user type {incoming!r} is being deleted into {source.name!r}; wait for it to finish"
        )
    _check_compatible(source, target)
    licences.lock_user_type(session, target.id)
    holders = (
        session.scalar(
            select(func.count()).where(
                PortalUser.user_type_id == source.id,
                PortalUser.status.not_in(licences.NON_HOLDING_STATUSES),
            )
        )
        or 0
    )
    _check_capacity(session, org, target, holders)
    source.transfer_to_id = target.id
    session.flush()


def continue_transfer_and_delete(
    session: Session,
    user_type_id: int,
    *,
    batch_size: int = 500,
    max_batches: int | None = 1,
    now: datetime | None = None,
) -> bool:
    """Move the next batch(es) and commit each; True once the type is deleted (or gone).

    One batch per call by default (``max_batches=None``: until done). Every user moves,
    whatever their status (removed users too: the row must not lose its type). Then the
    other rows naming the type move, and finally, in one transaction that holds the type's
    row lock, its email templates and the type itself are deleted. Safe to call again after
    a crash and to run twice at once (each batch locks the type row first).
    """
    if batch_size < 1:
        raise InvalidInput("batch size must be at least 1")
    done = 0
    while True:
        finished = _next_batch(session, user_type_id, batch_size, now or utcnow())
        session.commit()
        if finished:
            return True
        done += 1
        if max_batches is not None and done >= max_batches:
            return False


def users_left(session: Session, user_type_id: int) -> int:
    """How many portal users (any status) the type still holds."""
    query = select(func.count()).where(PortalUser.user_type_id == user_type_id)
    return session.scalar(query) or 0


def _next_batch(session: Session, source_id: int, batch_size: int, now: datetime) -> bool:
    source = session.get(PortalUserType, source_id, with_for_update=True, populate_existing=True)
    if source is None:
        return True  # already deleted: a repeated or concurrent call
    target_id = source.transfer_to_id
    if target_id is None:
        raise InvalidInput(
            f"user type {source.name!r} is not being deleted; start a transfer and delete first"
        )
    ids = list(
        session.scalars(
            select(PortalUser.id)
            .where(PortalUser.user_type_id == source_id)
            .order_by(PortalUser.id)
            .limit(batch_size)
            .with_for_update()
        )
    )
    if ids:
        session.execute(
            update(PortalUser)
            .where(PortalUser.id.in_(ids), PortalUser.user_type_id == source_id)
            .values(user_type_id=target_id, updated_at=now)
            .execution_options(synchronize_session="evaluate")
        )
        licences.sync_holders(session, [source_id, target_id])
        return False
    for table, column in _other_references():
        (key,) = table.primary_key.columns
        ids = list(
            session.scalars(select(key).where(column == source_id).order_by(key).limit(batch_size))
        )
        if ids:
            session.execute(
                update(table).where(key.in_(ids), column == source_id).values({column: target_id})
            )
            return False
    session.execute(delete(EmailTemplate).where(EmailTemplate.user_type_id == source_id))
    access_config.forget_user_type(session, source_id)  # what it exposed goes with it
    # A type being deleted into this one (a race past start's check) follows to the target.
    session.execute(
        update(PortalUserType)
        .where(PortalUserType.transfer_to_id == source_id)
        .values(transfer_to_id=target_id)
        .execution_options(synchronize_session="evaluate")
    )
    session.delete(source)
    session.flush()
    return True


def _other_references() -> Iterator[tuple[Table, Column[Any]]]:
    """Every (table, column) naming a user type, other than users, templates and types."""
    handled = {
        PortalUser.__tablename__,
        EmailTemplate.__tablename__,
        "portal_user_types",
        *access_config.USER_TYPE_TABLES,
    }
    for table in Base.metadata.sorted_tables:
        if table.name in handled:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == "portal_user_types":
                yield table, fk.parent  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Lead conversion


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
    failed = result.failed
    if failed:
        codes = [lead.code for lead in failed]
        code = CHOICE_REQUIRED if CHOICE_REQUIRED in codes else str(codes[0])
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
        raise _LeadFailure(INVALID_PAYLOAD, "the payload must be a JSON object")
    items = payload.get("leads", [payload] if "lead_id" in payload else None)
    if not isinstance(items, list) or not items:
        raise _LeadFailure(
            INVALID_PAYLOAD, 'the payload needs "leads": [{"lead_id", "contact_id"}, ...]'
        )
    for item in items:
        if not isinstance(item, dict) or not item.get("lead_id") or not item.get("contact_id"):
            raise _LeadFailure(INVALID_PAYLOAD, f"each lead needs lead_id and contact_id: {item!r}")
        chosen = item.get("user_type_id")
        if chosen is not None and (isinstance(chosen, bool) or not isinstance(chosen, int)):
            raise _LeadFailure(INVALID_PAYLOAD, f"user_type_id must be an integer: {item!r}")
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
        raise _LeadFailure(RECORD_MISSING, f"contact {contact_id} does not exist in the org")
    if contact.module != CONTACTS_MODULE:
        raise _LeadFailure(NOT_A_CONTACT, f"record {contact_id} is a {contact.module} record")
    if _user_of(session, contact) is not None:
        raise _LeadFailure(CONTACT_TAKEN, f"contact {contact_id} is already a portal user")
    target = _conversion_target(session, org, source, item.get("user_type_id"))
    licences.lock_user_type(session, target.id)
    if user.status not in licences.NON_HOLDING_STATUSES:
        capacity = licences.remaining_capacity(session, org, target)
        if capacity < 1:
            raise _LeadFailure(LICENSE_LIMIT, f"user type {target.name!r} has no licence left")
    moved_from = user.user_type_id
    user.record_id = contact.id
    user.user_type_id = target.id
    user.updated_at = now
    session.flush()
    licences.sync_holders(session, [moved_from, target.id])
    outcome.outcome, outcome.user_type_id = "converted", target.id
    outcome.message = f"moved to user type {target.name!r}"
    return outcome


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
            INVALID_USER_TYPE,
            f"user type {chosen} is not a {CONTACTS_MODULE} user type inviting by {preference}"
            f" in org {org.id}",
        )
    if not candidates:
        raise _LeadFailure(
            NO_CANDIDATE, f"the org has no {CONTACTS_MODULE} user type inviting by {preference}"
        )
    if len(candidates) == 1:
        return candidates[0]
    defaults = [candidate for candidate in candidates if candidate.conversion_default]
    if len(defaults) == 1:
        return defaults[0]
    names = ", ".join(repr(candidate.name) for candidate in candidates)
    raise _LeadFailure(
        CHOICE_REQUIRED,
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


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
