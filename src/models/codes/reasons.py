"""Why an invitation failed: before any send (the spec's reasons), and at or after it."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why an invitation was refused before any send (the spec's twelve, plus one)."""

    COMPANY_DOMAIN = "company_domain"
    AWAITING_APPROVAL = "awaiting_approval"
    UNDER_REVIEW = "under_review"
    NO_CONSENT = "no_consent"
    UNSUPPORTED_CHARACTERS = "unsupported_characters"
    ANONYMOUS_DOMAIN = "anonymous_domain"
    LICENCE_LIMIT = "licence_limit"
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
    ReasonCode.LICENCE_LIMIT: "The user type has no portal user licence left.",
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
    CHANNEL_PAUSED = "channel_paused"  # held: the org's channel is paused by a setup error
    OUTBOX_WRITE_FAILED = "outbox_write_failed"  # the embedded outbox could not be written


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
    SendFailureCode.CHANNEL_PAUSED: (
        "Held, not sent: the org's channel is paused until its setup is fixed and resumed."
    ),
    SendFailureCode.OUTBOX_WRITE_FAILED: "The outbox folder could not be written.",
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
