"""The CRM event contract, and ``publish``: the Python way for a CRM to send one.

Each event type has its schema (the same ones ``POST /events`` validates against). A
published event is stored once per (org, CRM event id), committed, and only then queued to
the ``handle_crm_event`` actor.

Every event names its record by the CRM's id as ``record_id`` (a list: ``record_ids``); the
older ``crm_id`` / ``crm_ids`` are accepted, deprecated, until the next release.

>>> from portalflow.events import publish
>>> publish(org_id=1, event_id="crm-evt-42", type="record.email_changed",
...         data={"record_id": "C-100", "email": "new@example.org"})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from .config import Settings
from .models import make_engine, make_session_factory
from .pipelines.crm import crm_events
from .workers import submit

# What an INTEGER id column holds (PostgreSQL's int4); a larger id cannot name a row.
MAX_ID = 2**31 - 1


def clean_text(value: Any) -> Any:
    """``value`` unchanged; ValueError when a string anywhere in it has NUL or a surrogate."""
    pending = [value]
    while pending:  # a loop, not recursion: nesting depth is the sender's choice
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("text must not contain NUL (\\u0000) characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                message = "text must not contain lone surrogates (\\ud800-\\udfff)"
                raise ValueError(message) from None
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return value


# Text that PostgreSQL and UTF-8 can store: no NUL, no lone surrogate.
CleanStr = Annotated[str, AfterValidator(clean_text)]


class RequestModel(BaseModel):
    """Base of every request body: no string in any field may hold NUL or a lone surrogate."""

    @field_validator("*", mode="after")
    @classmethod
    def _clean_text(cls, value: Any) -> Any:
        return clean_text(value)


CrmId = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=255)]
EventId = Annotated[str, Field(min_length=1, max_length=crm_events.MAX_KEY_LENGTH)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
MAX_CRM_IDS = 5000


# Every event names its record by the CRM's id as ``record_id`` (a list: ``record_ids``).
# The names used before, ``crm_id`` and ``crm_ids``, are still accepted for one release.
RECORD_ID = "record_id"
RECORD_IDS = "record_ids"
DEPRECATED_NAMES = {"crm_id": RECORD_ID, "crm_ids": RECORD_IDS}
_DEPRECATED = "Deprecated: the old name of `{new}`, accepted until the next release."


def renamed_fields(data: Any) -> Any:
    """``data`` with each deprecated field name replaced by its current one."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, new in DEPRECATED_NAMES.items():
        if old not in data:
            continue
        value = data.pop(old)
        if new in data and data[new] != value:
            raise ValueError(f"{old} is the deprecated name of {new}: give only {new}")
        data.setdefault(new, value)
    return data


class _Data(RequestModel):
    model_config = ConfigDict(extra="forbid")


class RecordUpserted(_Data):
    _renamed = model_validator(mode="before")(renamed_fields)

    record_id: CrmId = Field(description="The CRM's id of the record.")
    crm_id: CrmId | None = Field(
        None, deprecated=True, description=_DEPRECATED.format(new=RECORD_ID)
    )
    module: Annotated[str, Field(min_length=1, max_length=64)]
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None
    owner_email: Text | None = None
    approval_locked: bool | None = None
    review_locked: bool | None = None
    processing_basis: Annotated[str, Field(max_length=64)] | None = None
    consent_given: bool | None = None
    in_recycle_bin: bool | None = None
    fields: dict[str, Any] | None = None


class InvitationRequested(_Data):
    _renamed = model_validator(mode="before")(renamed_fields)

    user_type_id: Id
    inviter_id: Id
    record_ids: Annotated[list[CrmId], Field(min_length=1, max_length=MAX_CRM_IDS)] = Field(
        description="The CRM ids of the records to invite."
    )
    crm_ids: list[CrmId] | None = Field(
        None, deprecated=True, description=_DEPRECATED.format(new=RECORD_IDS)
    )
    language: Annotated[str, Field(min_length=2, max_length=8)] | None = None


class EmailChanged(_Data):
    record_id: CrmId = Field(description="The CRM's id of the record.")
    email: Annotated[str, Field(min_length=1, max_length=255)]


class PhoneChanged(_Data):
    record_id: CrmId = Field(description="The CRM's id of the record.")
    phone: Annotated[str, Field(min_length=1, max_length=32)]


class Lead(_Data):
    lead_id: CrmId
    contact_id: CrmId
    user_type_id: Id | None = None


class LeadConverted(_Data):
    leads: Annotated[list[Lead], Field(min_length=1, max_length=MAX_CRM_IDS)]


class RecordRef(_Data):
    record_id: CrmId = Field(description="The CRM's id of the record.")


class _Event(RequestModel):
    model_config = ConfigDict(extra="forbid")
    id: EventId = Field(description="The CRM's event id: the same id twice is one event.")


class RecordUpsertedEvent(_Event):
    type: Literal["record.upserted"]
    data: RecordUpserted


class InvitationRequestedEvent(_Event):
    type: Literal["invitation.requested"]
    data: InvitationRequested


class EmailChangedEvent(_Event):
    type: Literal["record.email_changed"]
    data: EmailChanged


class PhoneChangedEvent(_Event):
    type: Literal["record.phone_changed"]
    data: PhoneChanged


class LeadConvertedEvent(_Event):
    type: Literal["lead.converted"]
    data: LeadConverted


class RecordDeletedEvent(_Event):
    type: Literal["record.deleted"]
    data: RecordRef


class RecordRestoredEvent(_Event):
    type: Literal["record.restored"]
    data: RecordRef


Event = Annotated[
    RecordUpsertedEvent
    | InvitationRequestedEvent
    | EmailChangedEvent
    | PhoneChangedEvent
    | LeadConvertedEvent
    | RecordDeletedEvent
    | RecordRestoredEvent,
    Field(discriminator="type"),
]


_EVENT = TypeAdapter(Event)


def validate(event_id: str, type: str, data: dict[str, Any]) -> Any:
    """The event checked against its type's schema; pydantic.ValidationError names the field."""
    return _EVENT.validate_python({"id": event_id, "type": type, "data": data})


def publish(
    *,
    org_id: int,
    event_id: str,
    type: str,
    data: dict[str, Any],
    database_url: str | None = None,
) -> tuple[int, bool]:
    """Validate, store (once per event id), commit, then enqueue; (stored id, is new)."""
    event = validate(event_id, type, data)
    payload = event.data.model_dump(mode="json", exclude_unset=True)
    engine = make_engine(database_url or Settings.from_env().database_url)
    try:
        with make_session_factory(engine)() as session:
            recorded = submit.submit(
                session, submit.crm_event(org_id, event.type, event.id, payload)
            )
    finally:
        engine.dispose()
    return recorded.event_id, recorded.created
