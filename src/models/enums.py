"""Every status, kind and reason code of portalflow, in one place."""

from __future__ import annotations

from enum import StrEnum


class Edition(StrEnum):
    TRIAL = "trial"
    FREE = "free"
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"
    ULTIMATE = "ultimate"


class DataCentre(StrEnum):
    US = "us"
    EU = "eu"
    IN = "in"
    AU = "au"
    JP = "jp"
    CA = "ca"
    CN = "cn"


class InvitationPreference(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class RecordAccess(StrEnum):
    """Which records of a permitted module a CRM user may act on."""

    ALL = "all"
    OWNED = "owned"


class PortalUserStatus(StrEnum):
    """Where a portal user stands; the spec's filters are queries over this."""

    INVITED = "invited"  # invitation not yet accepted
    CONFIRMED = "confirmed"
    LOGIN_SUSPENDED = "login_suspended"  # address changed, awaiting confirmation
    DEACTIVATED = "deactivated"
    REMOVED = "removed"


class EmailKind(StrEnum):
    ACCEPT_INVITATION = "accept_invitation"
    CONFIRM_EMAIL = "confirm_email"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class InvitationStatus(StrEnum):
    QUEUED = "queued"  # written, waiting for a worker to claim it
    SENDING = "sending"  # claimed by one worker; the provider call is under way
    SENT = "sent"  # the provider accepted it; the token is live until expires_at
    FAILED = "failed"  # refused before the send, or failed at the provider for good
    SUPERSEDED = "superseded"  # a newer invitation replaced it; its token is dead
    ACCEPTED = "accepted"
    EXPIRED = "expired"


# Statuses in which an invitation still owns its portal user's attention.
OPEN_INVITATION_STATUSES = (
    InvitationStatus.QUEUED,
    InvitationStatus.SENDING,
    InvitationStatus.SENT,
)


class ReasonCode(StrEnum):
    """Why an invitation was refused before any send (the spec's twelve, plus one)."""

    COMPANY_DOMAIN = "company_domain"
    AWAITING_APPROVAL = "awaiting_approval"
    UNDER_REVIEW = "under_review"
    NO_CONSENT = "no_consent"
    UNSUPPORTED_CHARACTERS = "unsupported_characters"
    ANONYMOUS_DOMAIN = "anonymous_domain"
    LICENSE_LIMIT = "license_limit"
    ALREADY_PORTAL_USER = "already_portal_user"
    RECORD_MISSING = "record_missing"
    NO_MODULE_PERMISSION = "no_module_permission"
    NO_RECORD_PERMISSION = "no_record_permission"
    IN_RECYCLE_BIN = "in_recycle_bin"
    INVALID_ADDRESS = "invalid_address"
    INVALID_PHONE = "invalid_phone"
    UNSUPPORTED_COUNTRY = "unsupported_country"
    SMS_TEMPLATES_NOT_APPROVED = "sms_templates_not_approved"
    SUPPRESSED = "suppressed"


REASON_DESCRIPTIONS: dict[ReasonCode, str] = {
    ReasonCode.COMPANY_DOMAIN: "The address is on the org's own company domain (or a sub-domain).",
    ReasonCode.AWAITING_APPROVAL: "The record is locked, waiting for an approval process.",
    ReasonCode.UNDER_REVIEW: "The record is waiting for review.",
    ReasonCode.NO_CONSENT: "Consent is the record's processing basis and none was given.",
    ReasonCode.UNSUPPORTED_CHARACTERS: (
        "The email has characters other than A-Z a-z 0-9 and @ . - _ +."
    ),
    ReasonCode.ANONYMOUS_DOMAIN: "The email domain is anonymous, disposable or spam.",
    ReasonCode.LICENSE_LIMIT: "The user type has no portal user licence left.",
    ReasonCode.ALREADY_PORTAL_USER: "The record is already a portal user (of any user type).",
    ReasonCode.RECORD_MISSING: "The record no longer exists (or is not of the type's module).",
    ReasonCode.NO_MODULE_PERMISSION: "The inviting CRM user has no permission for the module.",
    ReasonCode.NO_RECORD_PERMISSION: "The inviting CRM user has no permission for the record.",
    ReasonCode.IN_RECYCLE_BIN: "The record is in the recycle bin.",
    ReasonCode.INVALID_ADDRESS: "The address is missing or malformed.",
    ReasonCode.INVALID_PHONE: "The number is missing, malformed, or not a mobile number.",
    ReasonCode.UNSUPPORTED_COUNTRY: "SMS invitations go only to Indian mobile numbers (+91).",
    ReasonCode.SMS_TEMPLATES_NOT_APPROVED: (
        "The user type invites by SMS and not all three SMS templates have an approved DLT "
        "mapping yet."
    ),
    ReasonCode.SUPPRESSED: (
        "The address bounced for good, complained or opted out before; an admin must clear it."
    ),
}


class SendFailureCode(StrEnum):
    """Why a send failed at or after the provider (grown by the classification issue)."""

    PROVIDER_REJECTED = "provider_rejected"
    TECHNICAL_FAILURE = "technical_failure"  # temporary trouble outlasted every retry
    DLT_MISMATCH = "dlt_mismatch"  # the rendered SMS no longer fits its DLT template
    INSUFFICIENT_SMS_CREDITS = "insufficient_sms_credits"
    RENDER_FAILED = "render_failed"  # this one message could not be rendered, built or checked
    TEMPLATE_TOO_SLOW = "template_too_slow"  # its render ran past the time budget
    TEMPLATE_TOO_LARGE = "template_too_large"  # its render would build past the size caps
    SEND_ERROR = "send_error"  # the channel raised something it does not classify
    LEASE_EXPIRED = "lease_expired"  # its worker stopped before recording the send (retried)


SEND_FAILURE_DESCRIPTIONS: dict[SendFailureCode, str] = {
    SendFailureCode.PROVIDER_REJECTED: "The provider refused the message for good.",
    SendFailureCode.TECHNICAL_FAILURE: "Temporary trouble at the provider outlasted every retry.",
    SendFailureCode.DLT_MISMATCH: (
        "The SMS no longer matches its DLT template, or a variable is too long or of the "
        "wrong type; nothing was sent."
    ),
    SendFailureCode.INSUFFICIENT_SMS_CREDITS: "The org has no SMS credits left; nothing was sent.",
    SendFailureCode.RENDER_FAILED: (
        "The message could not be rendered, built or checked (the detail says why); nothing "
        "was sent. Fix the template or the record and invite again."
    ),
    SendFailureCode.TEMPLATE_TOO_SLOW: (
        "Rendering the template for this record ran past its time budget; nothing was sent. "
        "Simplify the template (its loops) and invite again."
    ),
    SendFailureCode.TEMPLATE_TOO_LARGE: (
        "Rendering the template for this record would build too large a message or value; "
        "nothing was sent. Fix the template and invite again."
    ),
    SendFailureCode.SEND_ERROR: (
        "The channel failed with an error it does not classify; retried, then given up."
    ),
    SendFailureCode.LEASE_EXPIRED: (
        "The worker that was sending it stopped before recording the send; sent again."
    ),
}


def describe_failure(code: str) -> str:
    """The admin-facing meaning of any stored failure code."""
    for enum_cls, descriptions in (
        (ReasonCode, REASON_DESCRIPTIONS),
        (SendFailureCode, SEND_FAILURE_DESCRIPTIONS),
    ):
        try:
            return descriptions[enum_cls(code)]  # type: ignore[index]
        except ValueError:
            continue
    return "The provider did not take the message (see the detail)."


class OutcomeClass(StrEnum):
    """What we do about a provider answer."""

    DELIVERED = "delivered"  # the provider reports the message reached the recipient
    PERMANENT = "permanent"  # do not retry; the address or message is refused for good
    TEMPORARY = "temporary"  # retry later, with backoff
    CONFIGURATION = "configuration"  # our side is broken: pause the channel and alert
    UNKNOWN = "unknown"  # not understood: a bounded number of retries
    COMPLAINED = "complained"  # the recipient marked the message as spam


class ProviderEventStatus(StrEnum):
    RECEIVED = "received"  # stored raw; the classifying actor has not run yet
    PROCESSED = "processed"
    IGNORED = "ignored"  # understood, but about nothing we sent (or not final)
    FAILED = "failed"  # could not be understood; the detail says why


class BulkAction(StrEnum):
    INVITE = "invite"
    REINVITE = "reinvite"
    DEACTIVATE = "deactivate"
    ACTIVATE = "activate"
    REMOVE = "remove"
    TRANSFER = "transfer"


class CrmEventKind(StrEnum):
    RECORD_UPSERTED = "record.upserted"
    RECORD_DELETED = "record.deleted"
    RECORD_RESTORED = "record.restored"
    INVITATION_REQUESTED = "invitation.requested"
    EMAIL_CHANGED = "record.email_changed"
    PHONE_CHANGED = "record.phone_changed"
    LEAD_CONVERTED = "lead.converted"


class CrmEventStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"  # the detail says why; an admin may need to act


class BulkRunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


class ChunkStatus(StrEnum):
    PENDING = "pending"  # record ids stored, eligibility not yet decided
    EXPANDED = "expanded"  # invitations written for every record of the chunk


class SmsTemplateKind(StrEnum):
    INVITATION = "invitation"
    VERIFICATION = "verification"
    FORGOT_PASSWORD = "forgot_password"


class DltTemplateStatus(StrEnum):
    """The status a DLT operator portal gave the template."""

    APPROVED = "approved"
    REJECTED = "rejected"
    PENDING = "pending"


class VerificationStatus(StrEnum):
    """Whether a CRM-to-DLT template mapping has been verified."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SmsEncoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


# --- what a portal user may see and do (issue 21) ----------------------------------------


class FieldType(StrEnum):
    """The type of a field in a module's catalogue; it decides which operators fit."""

    TEXT = "text"
    PICKLIST = "picklist"
    NUMBER = "number"
    DATE = "date"  # ISO 8601 text, YYYY-MM-DD (a datetime's date part compares the same)
    BOOLEAN = "boolean"
    LOOKUP = "lookup"  # holds the CRM id of a record of another module
    MULTI_LOOKUP = "multi_lookup"  # a JSON list of CRM ids of records of another module


class RuleOperator(StrEnum):
    """The operators of match-by-value and match-by-field conditions."""

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    LESS_THAN = "less_than"
    LESS_OR_EQUAL = "less_or_equal"
    GREATER_THAN = "greater_than"
    GREATER_OR_EQUAL = "greater_or_equal"
    IS_EMPTY = "is_empty"
    IS_NOT_EMPTY = "is_not_empty"


class FieldAccess(StrEnum):
    """A field permission: seen and editable, seen only, or not sent at all."""

    VISIBLE = "visible"
    READ_ONLY = "read_only"
    HIDDEN = "hidden"


class ModuleRole(StrEnum):
    """How a module reaches a user type's portal users."""

    PRIMARY = "primary"  # the user's own record; always visible
    RELATED = "related"  # linked by lookup and/or criteria
    PUBLIC = "public"  # every record (or those the criteria keep), view only


class RecordAction(StrEnum):
    """The record permissions of a module."""

    CREATE = "create"
    VIEW = "view"
    EDIT = "edit"
    EDIT_SHARED = "edit_shared"  # edit records seen through criteria, not linked to the user
    DELETE = "delete"


class AccessCode(StrEnum):
    """Why an access rule was refused at save, or a portal user's request was refused."""

    # Refused when saved.
    UNKNOWN_MODULE = "unknown_module"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_FIELD = "invalid_field"  # a catalogue entry breaks a rule (name, type, options)
    OPERATOR_NOT_FOR_TYPE = "operator_not_for_type"
    INVALID_VALUE = "invalid_value"  # a value that does not fit its field or operator
    NOT_A_LOOKUP = "not_a_lookup"  # a lookup link through a field that is no lookup to it
    RULE_NEVER_MATCHES = "rule_never_matches"
    INVALID_RULE = "invalid_rule"  # not a rule at all (shape, empty group, unknown key)
    PERMISSION_NOT_ALLOWED = "permission_not_allowed"  # e.g. edit on a public module
    PII_HIDDEN = "pii_hidden"  # a PII/ePHI field shown while the set hides them
    FIELD_IN_USE = "field_in_use"  # a catalogue change would break a saved rule
    SET_OF_OTHER_TYPE = "set_of_other_type"  # a permission set given to another type's user
    # Refused to a portal user.
    USER_NOT_ACTIVE = "user_not_active"
    MODULE_NOT_EXPOSED = "module_not_exposed"
    RECORD_NOT_VISIBLE = "record_not_visible"
    ACTION_NOT_PERMITTED = "action_not_permitted"
    FIELD_NOT_EDITABLE = "field_not_editable"


ACCESS_DESCRIPTIONS: dict[AccessCode, str] = {
    AccessCode.UNKNOWN_MODULE: "The module has no field catalogue in this org.",
    AccessCode.UNKNOWN_FIELD: "The field is not in the module's catalogue.",
    AccessCode.INVALID_FIELD: "A field of the catalogue is malformed.",
    AccessCode.OPERATOR_NOT_FOR_TYPE: "The operator does not fit the field's type.",
    AccessCode.INVALID_VALUE: "The value does not fit the field's type or the operator.",
    AccessCode.NOT_A_LOOKUP: "The field is not a lookup to the user type's primary module.",
    AccessCode.RULE_NEVER_MATCHES: "No record could ever satisfy the rule.",
    AccessCode.INVALID_RULE: "The rule is not well formed.",
    AccessCode.PERMISSION_NOT_ALLOWED: "The permission cannot be given on this module.",
    AccessCode.PII_HIDDEN: "PII/ePHI fields stay hidden unless the set shows them on purpose.",
    AccessCode.FIELD_IN_USE: "A saved rule or permission uses the field.",
    AccessCode.SET_OF_OTHER_TYPE: "The permission set belongs to another user type.",
    AccessCode.USER_NOT_ACTIVE: "The portal user is not confirmed (or is deactivated/removed).",
    AccessCode.MODULE_NOT_EXPOSED: "The module is not exposed to the portal user.",
    AccessCode.RECORD_NOT_VISIBLE: "The record does not exist or the rules do not expose it.",
    AccessCode.ACTION_NOT_PERMITTED: "The permissions do not allow this action on the record.",
    AccessCode.FIELD_NOT_EDITABLE: "The field is hidden or read only for the portal user.",
}
