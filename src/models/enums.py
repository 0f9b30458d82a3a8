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
    WebhookEventType.USER_TRANSFERRED: "The portal user moved to another user type.",
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


class WebhookFailureCode(StrEnum):
    """Why one attempt to deliver a webhook failed."""

    HTTP_ERROR = "http_error"  # the endpoint answered, but not 2xx
    REDIRECT_REFUSED = "redirect_refused"  # it answered 3xx: redirects are never followed
    TIMEOUT = "timeout"
    CONNECTION_FAILED = "connection_failed"  # refused, reset, DNS failure, TLS failure
    ADDRESS_REFUSED = "address_refused"  # the host resolves to an address the policy refuses
    LEASE_EXPIRED = "lease_expired"  # its worker stopped mid-delivery; sent again


WEBHOOK_FAILURE_DESCRIPTIONS: dict[WebhookFailureCode, str] = {
    WebhookFailureCode.HTTP_ERROR: "The endpoint answered with a status other than 2xx.",
    WebhookFailureCode.REDIRECT_REFUSED: (
        "The endpoint answered with a redirect; redirects are not followed: give the final URL."
    ),
    WebhookFailureCode.TIMEOUT: "The endpoint did not answer in time.",
    WebhookFailureCode.CONNECTION_FAILED: "No connection (DNS, refused, reset or TLS failure).",
    WebhookFailureCode.ADDRESS_REFUSED: (
        "The host resolved to a private, loopback or link-local address, which is refused "
        "unless PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS allows it."
    ),
    WebhookFailureCode.LEASE_EXPIRED: (
        "The worker delivering it stopped before recording the answer; delivered again."
    ),
}


class WebhookUrlRefusal(StrEnum):
    """Why an endpoint URL is refused (at save time, or at send time once resolved)."""

    NOT_HTTP = "url_not_http"  # only http:// and https://
    NO_HOST = "url_without_host"
    CREDENTIALS = "url_with_credentials"  # user:password@ would be logged and sent around
    BAD_PORT = "url_bad_port"
    UNRESOLVABLE = "url_unresolvable"
    PRIVATE_ADDRESS = "url_private_address"
    TOO_LONG = "url_too_long"
