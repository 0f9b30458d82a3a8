"""How a CRM event ended when it did not apply: the result codes stored on the event."""

from __future__ import annotations

from enum import StrEnum


class CrmEventCode(StrEnum):
    """A failed CRM event's ``result_code`` (address changes also use :class:`ReasonCode`)."""

    INVALID_PAYLOAD = "invalid_payload"  # the event's data breaks its type's schema
    RECORD_MISSING = "record_missing"  # the record it names does not exist in the org
    REFUSED = "refused"  # a rule of the flow refused it; the detail says which
    USER_TYPE_CHOICE_REQUIRED = "user_type_choice_required"  # several Contacts types, no default
    RECORD_NOT_A_CONTACT = "record_not_a_contact"
    INVALID_USER_TYPE = "invalid_user_type"  # the chosen type cannot take the converted user
    NO_CONTACTS_USER_TYPE = "no_contacts_user_type"
    CONTACT_ALREADY_PORTAL_USER = "contact_already_portal_user"
    LICENCE_LIMIT = "licence_limit"  # the target type has no licence left
