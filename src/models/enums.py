"""Every status and kind of portalflow, in one place (the codes are in :mod:`.codes`)."""

from __future__ import annotations

from enum import StrEnum


class Edition(StrEnum):
    TRIAL = "trial"
    FREE = "free"
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"
    ULTIMATE = "ultimate"

    @property
    def is_paid(self) -> bool:
        """Standard and above: a paid edition keeps the portal and cancels any deletion."""
        return self not in (Edition.TRIAL, Edition.FREE)


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
    """What a message on the invitations table is for (the column predates the SMS kinds)."""

    ACCEPT_INVITATION = "accept_invitation"
    CONFIRM_EMAIL = "confirm_email"
    RESET_PASSWORD = "reset_password"  # forgot password: by email, or the forgot-password SMS
    SIGN_IN_CODE = "sign_in_code"  # a one-time sign-in code: the verification SMS only


# The kinds that have email templates (per user type and language); the rest are SMS only.
EMAIL_TEMPLATE_KINDS: tuple[EmailKind, ...] = (
    EmailKind.ACCEPT_INVITATION,
    EmailKind.CONFIRM_EMAIL,
    EmailKind.RESET_PASSWORD,
)


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


class SignInMethod(StrEnum):
    """How a portal session was opened."""

    PASSWORD = "password"  # email-preference user types: email and password
    SMS_CODE = "sms_code"  # phone-preference user types: the number and a one-time code


class SessionState(StrEnum):
    """Where a portal session stands, as an admin reads it."""

    LIVE = "live"
    EXPIRED = "expired"
    ENDED = "ended"


class SessionEndReason(StrEnum):
    """Why a portal session ended before it expired."""

    LOGOUT = "logout"
    DEACTIVATED = "deactivated"
    REMOVED = "removed"
    TRANSFERRED = "transferred"  # moved to another user type
    LOGIN_SUSPENDED = "login_suspended"  # the email changed
    ADDRESS_CHANGED = "address_changed"  # the phone number changed
    PASSWORD_RESET = "password_reset"
    ENDED_BY_ADMIN = "ended_by_admin"


class WebhookEventType(StrEnum):
    """What portalflow tells a CRM's webhook endpoints (the event catalogue)."""

    INVITATION_QUEUED = "invitation.queued"
    INVITATION_SENT = "invitation.sent"
    INVITATION_DELIVERED = "invitation.delivered"
    INVITATION_FAILED = "invitation.failed"
    INVITATION_EXPIRED = "invitation.expired"
    INVITATION_ACCEPTED = "invitation.accepted"
    USER_CONFIRMED = "user.confirmed"
    USER_SUSPENDED = "user.suspended"
    USER_DEACTIVATED = "user.deactivated"
    USER_ACTIVATED = "user.activated"
    USER_REMOVED = "user.removed"
    USER_TRANSFERRED = "user.transferred"
    LEAD_CONVERSION_DONE = "lead_conversion.done"
    LEAD_CONVERSION_CHOICE_REQUIRED = "lead_conversion.choice_required"
    LICENCE_ALERT = "licence.alert"


WEBHOOK_EVENT_DESCRIPTIONS: dict[WebhookEventType, str] = {
    WebhookEventType.INVITATION_QUEUED: "An invitation was written and waits to be sent.",
    WebhookEventType.INVITATION_SENT: "The email or SMS provider accepted the invitation.",
    WebhookEventType.INVITATION_DELIVERED: "The provider reports it reached the recipient.",
    WebhookEventType.INVITATION_FAILED: (
        "Refused before the send (a reason code), failed at the provider, or bounced after it "
        "(a failure code and its outcome class)."
    ),
    WebhookEventType.INVITATION_EXPIRED: "Seven days passed and the invitation was not accepted.",
    WebhookEventType.INVITATION_ACCEPTED: "The recipient accepted (or confirmed the new email).",
    WebhookEventType.USER_CONFIRMED: "The portal user is confirmed (accepted, or email confirmed).",
    WebhookEventType.USER_SUSPENDED: "The login is suspended until the new email is confirmed.",
    WebhookEventType.USER_DEACTIVATED: "The portal user was deactivated.",
    WebhookEventType.USER_ACTIVATED: "The portal user was activated again.",
    WebhookEventType.USER_REMOVED: "The portal user was removed (or its first invitation failed).",
    WebhookEventType.USER_TRANSFERRED: (
        "The portal user moved to another user type (a lead conversion too)."
    ),
    WebhookEventType.LEAD_CONVERSION_DONE: "A converted lead's portal user now is the contact's.",
    WebhookEventType.LEAD_CONVERSION_CHOICE_REQUIRED: (
        "A converted lead's portal user could not move: the Contacts user type must be chosen."
    ),
    WebhookEventType.LICENCE_ALERT: "A licence alert was raised (overage, near the limit, trial).",
}


class WebhookDeliveryStatus(StrEnum):
    """Where one event's delivery to one endpoint stands (the outbox row)."""

    PENDING = "pending"  # waiting for its (next) attempt
    SENDING = "sending"  # claimed by a worker; the POST is under way
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # every attempt failed; an admin may redeliver it


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
