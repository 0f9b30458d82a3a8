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


class SignInMethod(StrEnum):
    """How a portal session was opened."""

    PASSWORD = "password"  # email-preference user types: email and password
    SMS_CODE = "sms_code"  # phone-preference user types: the number and a one-time code


class SignInRefusal(StrEnum):
    """Why a sign-in, code request, reset or session check was refused (a value, not text)."""

    INVALID_CREDENTIALS = "invalid_credentials"  # no such account, or a wrong password or code
    UNCONFIRMED = "unconfirmed"  # the invitation was never accepted
    LOGIN_SUSPENDED = "login_suspended"  # the email changed and is not confirmed yet
    DEACTIVATED = "deactivated"
    REMOVED = "removed"
    LOCKED_OUT = "locked_out"  # too many failed attempts on this account
    RATE_LIMITED = "rate_limited"  # too many attempts from this client address
    INVALID_RESET_TOKEN = "invalid_reset_token"  # unknown, used, expired or superseded
    NO_SESSION = "no_session"  # no session token, or one we never issued
    SESSION_EXPIRED = "session_expired"
    SESSION_ENDED = "session_ended"  # logged out or revoked


SIGN_IN_REFUSAL_DESCRIPTIONS: dict[SignInRefusal, str] = {
    SignInRefusal.INVALID_CREDENTIALS: "The sign-in details are not right.",
    SignInRefusal.UNCONFIRMED: (
        "This account's invitation was never accepted: use the link of the invitation first."
    ),
    SignInRefusal.LOGIN_SUSPENDED: (
        "The account's email address changed: confirm the new address with the link sent to "
        "it, then sign in."
    ),
    SignInRefusal.DEACTIVATED: "This account is deactivated; ask the portal's admin.",
    SignInRefusal.REMOVED: "This account was removed from the portal; ask the portal's admin.",
    SignInRefusal.LOCKED_OUT: (
        "Too many failed attempts on this account; wait before trying again."
    ),
    SignInRefusal.RATE_LIMITED: "Too many attempts from this address; wait before trying again.",
    SignInRefusal.INVALID_RESET_TOKEN: (
        "This reset link is not valid any more (used, expired after one hour, or replaced by a "
        "newer one); ask for a new one."
    ),
    SignInRefusal.NO_SESSION: "Not signed in.",
    SignInRefusal.SESSION_EXPIRED: "The session expired; sign in again.",
    SignInRefusal.SESSION_ENDED: "The session was ended (signed out or revoked); sign in again.",
}


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
