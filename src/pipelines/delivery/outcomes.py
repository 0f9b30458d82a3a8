"""Every provider answer, mapped to one outcome class and one stable outcome code.

Pure functions over plain tables: no database, no HTTP. Each table row can be checked line
by line against the provider's documentation:

- SES API errors: SESv2 API reference, ``SendEmail`` "Errors", and AWS "Common Errors".
- SES events: "Contents of event data that Amazon SES publishes to Amazon SNS" (bounce
  types and subtypes), which also covers the older ``notificationType`` notifications.
- Twilio: the error dictionary, https://www.twilio.com/docs/api/errors/<code>, and the
  Message resource's status values.
- SMTP: RFC 5321 reply codes, RFC 3463 enhanced status codes (the IANA "SMTP Enhanced
  Status Codes" registry; 5.1.10 is RFC 7505's null MX) and RFC 4954's 530.

The outcome ``code`` is what is stored on the invitation and shown to admins (see
`describe`); the provider's own code goes to ``raw``, for the detail column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portalflow.models import OutcomeClass


@dataclass(frozen=True)
class Outcome:
    """One classified provider answer."""

    outcome_class: OutcomeClass
    code: str  # stable snake_case identifier, stored on the row; see OUTCOME_DESCRIPTIONS
    raw: str  # the provider's own code or type, for the detail column

    @property
    def retryable(self) -> bool:
        """Whether a later attempt may succeed (temporary or unknown trouble)."""
        return self.outcome_class in (OutcomeClass.TEMPORARY, OutcomeClass.UNKNOWN)

    @property
    def suppresses(self) -> bool:
        """Whether the address or number goes on the org's suppression list.

        Permanent bounces (a bad address or number), complaints and opt-outs suppress; a
        permanent refusal of the message itself (SES ``MessageRejected``) does not.
        """
        return self.outcome_class is OutcomeClass.COMPLAINED or self.code in SUPPRESSING_CODES


# --- Outcome codes and their meaning for admins ------------------------------------------

DELIVERED = "delivered"
CONNECTION_ERROR_CODE = "connection_error"  # same string as channels.base.CONNECTION_ERROR

OUTCOME_DESCRIPTIONS: dict[str, str] = {
    DELIVERED: "The provider reports the message was delivered.",
    CONNECTION_ERROR_CODE: "The provider could not be reached, or did not answer in time.",
    # SES API errors
    "ses_throttled": "SES refused the request for now: the sending rate was exceeded.",
    "ses_quota_exceeded": "SES refused the request: the account's sending quota is used up "
    "for now (it resets within 24 hours).",
    "ses_rejected": "SES rejected the message (its content, or an unverified sender).",
    "mail_from_domain_not_verified": "The custom MAIL FROM domain is not verified in SES.",
    "account_suspended": "The SES account is suspended from sending.",
    "sending_paused": "Sending is paused for the SES account or configuration set.",
    "ses_unknown": "SES answered with an error we do not know.",
    "ses_configuration": "SES refused our credentials, permissions or configuration set.",
    "ses_unavailable": "SES had an internal failure; try again later.",
    # SES bounce events
    "bounce_general": "The receiving server refused the address for good.",
    "bounce_no_email": "The address does not exist.",
    "bounce_suppressed": "SES did not send: the address is on SES's global suppression list.",
    "bounce_on_account_suppression_list": (
        "SES did not send: the address is on the account's suppression list."
    ),
    "bounce_permanent": "The address was refused for good (an unlisted permanent bounce).",
    "bounce_transient_general": "The receiving server refused the message for now.",
    "bounce_mailbox_full": "The recipient's mailbox is full.",
    "bounce_message_too_large": "The message was too large for the receiving server.",
    "bounce_content_rejected": "The receiving server refused the message's content.",
    "bounce_attachment_rejected": "The receiving server refused the message's attachment.",
    "bounce_transient": "The message was refused for now (an unlisted transient bounce).",
    "bounce_undetermined": "The message bounced for a reason SES could not determine.",
    "bounce_unknown": "The message bounced with a bounce type we do not know.",
    # SES complaint events
    "complaint": "The recipient marked the message as spam; the address is suppressed.",
    # Twilio errors
    "invalid_to_number": "The 'To' phone number is invalid.",
    "not_mobile_number": "The 'To' number is not a valid mobile number.",
    "landline_number": "The 'To' number is a landline and cannot receive SMS.",
    "unknown_destination": "The destination handset is unknown to the carrier.",
    "landline_or_unreachable": "The number is a landline or its carrier is unreachable.",
    "message_blocked": "The carrier blocked the message to this number.",
    "opted_out": "The recipient opted out (replied STOP); the number is suppressed.",
    "region_not_enabled": "The Twilio account may not send SMS to this country or region.",
    "carrier_filtered": (
        "The carrier filtered the message (e.g. DLT template or sender registration)."
    ),
    "toll_free_not_verified": "The toll-free sender has not been verified.",
    "trial_unverified_number": "A Twilio trial account may only send to verified numbers.",
    "twilio_throttled": "Twilio refused the request for now: too many requests.",
    "queue_overflow": "Twilio's queue for the sender overflowed; try again later.",
    "unreachable_handset": "The handset is unreachable (switched off or out of coverage).",
    "twilio_unknown": "Twilio reported an unknown error, or an error code we do not know.",
    "twilio_configuration": "Twilio refused our account, sender or service configuration.",
    "twilio_rejected": "Twilio refused the message itself (empty or too long).",
    # AWS End User Messaging SMS
    "aws_sms_throttled": "AWS SMS refused the request for now: over the sending rate.",
    "aws_sms_rejected": "AWS SMS refused the message (number, DLT ids or body).",
    "aws_sms_configuration": "The AWS SMS account, sender id or country setup is incomplete.",
    "aws_sms_unavailable": "AWS SMS had an internal failure; try again later.",
    "aws_sms_unknown": "AWS SMS answered with an error we do not know.",
    # SMTP
    "smtp_rejected": "The SMTP server refused the message for good (a 5xx reply).",
    "smtp_temporary": "The SMTP server refused the message for now (a 4xx reply).",
    "smtp_configuration": "Our SMTP login, STARTTLS or certificate setup was refused.",
    "smtp_no_such_user": "The receiving server says the mailbox does not exist; suppressed.",
    "smtp_no_such_domain": "The address's domain does not exist or takes no mail; suppressed.",
    "smtp_bad_address": "The receiving server says the address is malformed; suppressed.",
    "smtp_mailbox_moved": "The mailbox has moved and gives no forwarding address; suppressed.",
    "smtp_null_mx": "The address's domain publishes a null MX: it takes no mail; suppressed.",
    "smtp_mailbox_disabled": "The mailbox is disabled and takes no mail; suppressed.",
    "smtp_policy_rejected": "The SMTP server refused us or our message by policy (5.7.x: "
    "relaying, SPF/DMARC, spam filter ...); the address itself is not suppressed.",
}


def describe(code: str) -> str:
    """The admin-facing meaning of an outcome code."""
    return OUTCOME_DESCRIPTIONS.get(code, "The provider reported an outcome we do not know.")


# --- SES API errors (sesv2) ---------------------------------------------------------------

# SES error code (``error["Code"]``) -> (outcome class, our code).
SES_ERRORS: dict[str, tuple[OutcomeClass, str]] = {
    "TooManyRequestsException": (OutcomeClass.TEMPORARY, "ses_throttled"),
    "Throttling": (OutcomeClass.TEMPORARY, "ses_throttled"),
    "ThrottlingException": (OutcomeClass.TEMPORARY, "ses_throttled"),
    "MessageRejected": (OutcomeClass.PERMANENT, "ses_rejected"),
    "MailFromDomainNotVerifiedException": (
        OutcomeClass.CONFIGURATION,
        "mail_from_domain_not_verified",
    ),
    "AccountSuspendedException": (OutcomeClass.CONFIGURATION, "account_suspended"),
    "SendingPausedException": (OutcomeClass.CONFIGURATION, "sending_paused"),
    # Beyond the list: the rest of SendEmail's and the common errors.
    "LimitExceededException": (OutcomeClass.TEMPORARY, "ses_quota_exceeded"),  # daily; resets
    "BadRequestException": (OutcomeClass.PERMANENT, "ses_rejected"),  # the input is invalid
    "NotFoundException": (OutcomeClass.CONFIGURATION, "ses_configuration"),  # e.g. config set
    "InternalFailure": (OutcomeClass.TEMPORARY, "ses_unavailable"),
    "InternalServiceErrorException": (OutcomeClass.TEMPORARY, "ses_unavailable"),
    "ServiceUnavailable": (OutcomeClass.TEMPORARY, "ses_unavailable"),
    "AccessDeniedException": (OutcomeClass.CONFIGURATION, "ses_configuration"),
    "UnrecognizedClientException": (OutcomeClass.CONFIGURATION, "ses_configuration"),
    "InvalidClientTokenId": (OutcomeClass.CONFIGURATION, "ses_configuration"),
    "SignatureDoesNotMatch": (OutcomeClass.CONFIGURATION, "ses_configuration"),
    "MissingAuthenticationToken": (OutcomeClass.CONFIGURATION, "ses_configuration"),
}
SES_UNKNOWN = "ses_unknown"

# A provider refusing for now because requests came too fast: our pace, not the invitation,
# so retrying it does not spend one of the invitation's attempts.
THROTTLED_CODES = frozenset({"ses_throttled", "twilio_throttled", "aws_sms_throttled"})

# Connection refused or reset, connect or read timeout (any provider).
CONNECTION_ERROR = Outcome(OutcomeClass.TEMPORARY, CONNECTION_ERROR_CODE, "connection_error")


def classify_ses_error(code: str) -> Outcome:
    """Classify an SES API error code; a code not in `SES_ERRORS` is unknown."""
    outcome_class, our_code = SES_ERRORS.get(code, (OutcomeClass.UNKNOWN, SES_UNKNOWN))
    return Outcome(outcome_class, our_code, code)


# --- SES events (Bounce, Complaint, Delivery) ----------------------------------------------

# (bounceType, bounceSubType) -> (outcome class, our code).
SES_BOUNCES: dict[tuple[str, str], tuple[OutcomeClass, str]] = {
    ("Permanent", "General"): (OutcomeClass.PERMANENT, "bounce_general"),
    ("Permanent", "NoEmail"): (OutcomeClass.PERMANENT, "bounce_no_email"),
    ("Permanent", "Suppressed"): (OutcomeClass.PERMANENT, "bounce_suppressed"),
    ("Permanent", "OnAccountSuppressionList"): (
        OutcomeClass.PERMANENT,
        "bounce_on_account_suppression_list",
    ),
    ("Transient", "General"): (OutcomeClass.TEMPORARY, "bounce_transient_general"),
    ("Transient", "MailboxFull"): (OutcomeClass.TEMPORARY, "bounce_mailbox_full"),
    ("Transient", "MessageTooLarge"): (OutcomeClass.TEMPORARY, "bounce_message_too_large"),
    ("Transient", "ContentRejected"): (OutcomeClass.TEMPORARY, "bounce_content_rejected"),
    ("Transient", "AttachmentRejected"): (OutcomeClass.TEMPORARY, "bounce_attachment_rejected"),
    ("Undetermined", "Undetermined"): (OutcomeClass.TEMPORARY, "bounce_undetermined"),
}

# bounceType -> (outcome class, our code), for a subtype the table above does not list.
SES_BOUNCE_TYPES: dict[str, tuple[OutcomeClass, str]] = {
    "Permanent": (OutcomeClass.PERMANENT, "bounce_permanent"),
    "Transient": (OutcomeClass.TEMPORARY, "bounce_transient"),
    "Undetermined": (OutcomeClass.TEMPORARY, "bounce_undetermined"),
}
SES_BOUNCE_UNKNOWN = "bounce_unknown"
SES_EVENT_TYPES = ("Bounce", "Complaint", "Delivery")


def classify_ses_bounce(bounce_type: str, bounce_subtype: str) -> Outcome:
    """Classify one SES bounce by its type and subtype."""
    outcome_class, code = SES_BOUNCES.get(
        (bounce_type, bounce_subtype),
        SES_BOUNCE_TYPES.get(bounce_type, (OutcomeClass.UNKNOWN, SES_BOUNCE_UNKNOWN)),
    )
    return Outcome(outcome_class, code, f"{bounce_type}/{bounce_subtype}")


def ses_event_type(message: Mapping[str, Any]) -> str:
    """The event's type: ``eventType`` (event publishing) or ``notificationType``."""
    return str(message.get("eventType") or message.get("notificationType") or "")


def ses_message_id(message: Mapping[str, Any]) -> str:
    """The SES MessageId the event is about (``mail.messageId``)."""
    message_id = (message.get("mail") or {}).get("messageId")
    if not message_id:
        raise ValueError("SES event has no mail.messageId")
    return str(message_id)


def classify_ses_event(message: Mapping[str, Any]) -> list[tuple[str, Outcome]]:
    """One (recipient address, outcome) per recipient an SES event names.

    ``message`` is the SES event or notification JSON (the SNS ``Message``, parsed). Only
    Bounce, Complaint and Delivery are understood; any other type raises `ValueError`.
    """
    event_type = ses_event_type(message)
    if event_type == "Bounce":
        bounce = message.get("bounce") or {}
        outcome = classify_ses_bounce(
            str(bounce.get("bounceType", "")), str(bounce.get("bounceSubType", ""))
        )
        recipients = [r.get("emailAddress", "") for r in bounce.get("bouncedRecipients", [])]
    elif event_type == "Complaint":
        complaint = message.get("complaint") or {}
        raw = str(complaint.get("complaintFeedbackType") or "Complaint")
        outcome = Outcome(OutcomeClass.COMPLAINED, "complaint", raw)
        recipients = [r.get("emailAddress", "") for r in complaint.get("complainedRecipients", [])]
    elif event_type == "Delivery":
        delivery = message.get("delivery") or {}
        outcome = Outcome(OutcomeClass.DELIVERED, DELIVERED, "Delivery")
        recipients = list(delivery.get("recipients", []))
    else:
        raise ValueError(
            f"unsupported SES event type {event_type!r}: expected one of "
            f"{', '.join(SES_EVENT_TYPES)} in eventType or notificationType"
        )
    return [(str(address).strip(), outcome) for address in recipients if address]


# --- Twilio --------------------------------------------------------------------------------

# Twilio error code -> (outcome class, our code).
TWILIO_ERRORS: dict[int, tuple[OutcomeClass, str]] = {
    21211: (OutcomeClass.PERMANENT, "invalid_to_number"),  # Invalid 'To' Phone Number
    21614: (OutcomeClass.PERMANENT, "not_mobile_number"),  # 'To' number is not a valid mobile
    21635: (OutcomeClass.PERMANENT, "landline_number"),  # 'To' number cannot be a landline
    30005: (OutcomeClass.PERMANENT, "unknown_destination"),  # Unknown destination handset
    30006: (OutcomeClass.PERMANENT, "landline_or_unreachable"),  # Landline/unreachable carrier
    30004: (OutcomeClass.PERMANENT, "message_blocked"),  # Message blocked
    21610: (OutcomeClass.PERMANENT, "opted_out"),  # Attempt to send to unsubscribed recipient
    21408: (OutcomeClass.CONFIGURATION, "region_not_enabled"),  # Permission for region
    30007: (OutcomeClass.CONFIGURATION, "carrier_filtered"),  # Message filtered
    30032: (OutcomeClass.CONFIGURATION, "toll_free_not_verified"),  # Toll-Free not verified
    21608: (OutcomeClass.CONFIGURATION, "trial_unverified_number"),  # Trial: unverified 'To'
    20429: (OutcomeClass.TEMPORARY, "twilio_throttled"),  # Too Many Requests
    30001: (OutcomeClass.TEMPORARY, "queue_overflow"),  # Queue overflow
    30003: (OutcomeClass.TEMPORARY, "unreachable_handset"),  # Unreachable destination handset
    30008: (OutcomeClass.UNKNOWN, "twilio_unknown"),  # Unknown error
    # Beyond the list: answers of the Messages API itself.
    20003: (OutcomeClass.CONFIGURATION, "twilio_configuration"),  # Authentication error
    20404: (OutcomeClass.CONFIGURATION, "twilio_configuration"),  # Wrong account/service SID
    21212: (OutcomeClass.CONFIGURATION, "twilio_configuration"),  # Invalid 'From' number
    21606: (OutcomeClass.CONFIGURATION, "twilio_configuration"),  # 'From' cannot send SMS
    21602: (OutcomeClass.PERMANENT, "twilio_rejected"),  # Message body is required
    21617: (OutcomeClass.PERMANENT, "twilio_rejected"),  # Body over 1600 characters
}
# HTTP status -> outcome, for an API error whose code the table does not list.
TWILIO_HTTP_STATUSES: dict[int, tuple[OutcomeClass, str]] = {
    401: (OutcomeClass.CONFIGURATION, "twilio_configuration"),
    403: (OutcomeClass.CONFIGURATION, "twilio_configuration"),
    429: (OutcomeClass.TEMPORARY, "twilio_throttled"),
}
TWILIO_UNKNOWN = "twilio_unknown"

# Message status (status callback ``MessageStatus``) -> whether it is final.
TWILIO_STATUSES: dict[str, bool] = {
    "accepted": False,
    "scheduled": False,
    "queued": False,
    "sending": False,
    "sent": False,
    "delivered": True,  # -> delivered
    "undelivered": True,  # -> TWILIO_ERRORS by ErrorCode
    "failed": True,  # -> TWILIO_ERRORS by ErrorCode
}


def _as_code(code: int | str | None) -> int | None:
    if code is None or isinstance(code, int):
        return code
    text = code.strip()
    return int(text) if text.isdigit() else None


def classify_twilio_error(code: int | str | None) -> Outcome:
    """Classify a Twilio error code (an API error or a callback's ``ErrorCode``).

    A code not in `TWILIO_ERRORS`, or none at all, is unknown.
    """
    number = _as_code(code)
    raw = "" if code is None else str(code).strip()
    if number is None or number not in TWILIO_ERRORS:
        return Outcome(OutcomeClass.UNKNOWN, TWILIO_UNKNOWN, raw)
    outcome_class, our_code = TWILIO_ERRORS[number]
    return Outcome(outcome_class, our_code, raw)


def classify_twilio_api_error(code: int | str | None, http_status: int) -> Outcome:
    """Classify an error answer of Twilio's API: by code, else by HTTP status."""
    number = _as_code(code)
    if number is not None and number in TWILIO_ERRORS:
        return classify_twilio_error(number)
    if http_status in TWILIO_HTTP_STATUSES:
        outcome_class, our_code = TWILIO_HTTP_STATUSES[http_status]
        return Outcome(outcome_class, our_code, str(code or http_status))
    return classify_twilio_error(code)


def classify_twilio_status(status: str, error_code: int | str | None) -> Outcome | None:
    """Classify a Twilio status callback; None while the message is not final yet.

    ``delivered`` is delivered; ``undelivered`` and ``failed`` go through
    `classify_twilio_error` (no error code: unknown). An unlisted status raises `ValueError`.
    """
    status = status.strip().lower()
    if status not in TWILIO_STATUSES:
        raise ValueError(
            f"unsupported Twilio message status {status!r}: expected one of "
            f"{', '.join(TWILIO_STATUSES)}"
        )
    if not TWILIO_STATUSES[status]:
        return None
    if status == "delivered":
        return Outcome(OutcomeClass.DELIVERED, DELIVERED, status)
    if error_code is None or str(error_code).strip() == "":
        return Outcome(OutcomeClass.UNKNOWN, TWILIO_UNKNOWN, status)
    return classify_twilio_error(error_code)


# --- AWS End User Messaging SMS (pinpoint-sms-voice-v2 SendTextMessage) --------------------

# Error code -> (outcome class, our code).
AWS_SMS_ERRORS: dict[str, tuple[OutcomeClass, str]] = {
    "ThrottlingException": (OutcomeClass.TEMPORARY, "aws_sms_throttled"),  # over MPS / API rate
    "ValidationException": (OutcomeClass.PERMANENT, "aws_sms_rejected"),  # number, ids, body
    "ConflictException": (OutcomeClass.PERMANENT, "aws_sms_rejected"),  # see the Reason table
    "AccessDeniedException": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "ResourceNotFoundException": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "ServiceQuotaExceededException": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "InternalServerException": (OutcomeClass.TEMPORARY, "aws_sms_unavailable"),
    "InternalFailure": (OutcomeClass.TEMPORARY, "aws_sms_unavailable"),
    "ServiceUnavailable": (OutcomeClass.TEMPORARY, "aws_sms_unavailable"),
    "UnrecognizedClientException": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "InvalidClientTokenId": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "SignatureDoesNotMatch": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "MissingAuthenticationToken": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
}
# The error's Reason field, which says more than its code (checked first).
AWS_SMS_REASONS: dict[str, tuple[OutcomeClass, str]] = {
    "DESTINATION_PHONE_NUMBER_OPTED_OUT": (OutcomeClass.PERMANENT, "opted_out"),
    "DESTINATION_PHONE_NUMBER_NOT_VERIFIED": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "NO_ORIGINATION_IDENTITIES_FOUND": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "SENDER_ID_NOT_REGISTERED": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "SENDER_ID_REQUIRES_REGISTRATION": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
    "COUNTRY_NOT_ENABLED": (OutcomeClass.CONFIGURATION, "aws_sms_configuration"),
}
AWS_SMS_UNKNOWN = "aws_sms_unknown"


def classify_aws_sms_error(code: str, reason: str = "") -> Outcome:
    """Classify an AWS SMS error by its Reason, else its code; anything else is unknown."""
    for key, table in ((reason, AWS_SMS_REASONS), (code, AWS_SMS_ERRORS)):
        if key and key in table:
            outcome_class, our_code = table[key]
            return Outcome(outcome_class, our_code, key)
    return Outcome(OutcomeClass.UNKNOWN, AWS_SMS_UNKNOWN, reason or code)


# --- SMTP ----------------------------------------------------------------------------------

SMTP_REPLIES: dict[int, tuple[OutcomeClass, str]] = {
    5: (OutcomeClass.PERMANENT, "smtp_rejected"),  # 5xx: this message will never be taken
    4: (OutcomeClass.TEMPORARY, "smtp_temporary"),  # 4xx: try again later
}
# Whole reply codes that say more than their first digit (checked before SMTP_REPLIES).
SMTP_REPLY_CODES: dict[int, tuple[OutcomeClass, str]] = {
    530: (OutcomeClass.CONFIGURATION, "smtp_configuration"),  # RFC 4954: authentication required
}
# RFC 3463 enhanced status code of a 5xx reply about the recipient's address or mailbox
# (RCPT, or the end of DATA) -> outcome; these suppress the address like a hard bounce.
SMTP_RECIPIENT_STATUSES: dict[str, tuple[OutcomeClass, str]] = {
    "5.1.1": (OutcomeClass.PERMANENT, "smtp_no_such_user"),  # Bad destination mailbox address
    "5.1.2": (OutcomeClass.PERMANENT, "smtp_no_such_domain"),  # Bad destination system address
    "5.1.3": (OutcomeClass.PERMANENT, "smtp_bad_address"),  # Bad destination mailbox syntax
    "5.1.6": (OutcomeClass.PERMANENT, "smtp_mailbox_moved"),  # Mailbox has moved, no forwarding
    "5.1.10": (OutcomeClass.PERMANENT, "smtp_null_mx"),  # Recipient address has null MX
    "5.2.1": (OutcomeClass.PERMANENT, "smtp_mailbox_disabled"),  # Mailbox disabled
}
# Enhanced status codes about us or our message, at any stage; never suppress.
SMTP_SENDER_STATUSES: dict[str, tuple[OutcomeClass, str]] = {
    "5.7.8": (OutcomeClass.CONFIGURATION, "smtp_configuration"),  # Credentials invalid
}
# Enhanced class.subject -> outcome, for a detail the tables above do not list.
SMTP_STATUS_SUBJECTS: dict[str, tuple[OutcomeClass, str]] = {
    "5.7": (OutcomeClass.PERMANENT, "smtp_policy_rejected"),  # Security or policy status
}
_ENHANCED_STATUS = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\S)")


def smtp_enhanced_status(code: int, reply: str) -> str | None:
    """The RFC 3463 enhanced status code opening ``reply`` (``5.1.1``), if it has one.

    One whose class differs from the reply code's first digit is ignored, as RFC 3463 says.
    """
    match = _ENHANCED_STATUS.match(reply)
    if match is None or int(match.group(1)) != code // 100:
        return None
    return ".".join(str(int(part)) for part in match.groups())


def classify_smtp_reply(code: int, reply: str = "", *, about_recipient: bool = True) -> Outcome:
    """Classify an SMTP reply: by its enhanced status, its code, the status's subject, class.

    A 5xx is final and a 4xx (or a garbled reply) worth another try. A 5xx rejecting the
    recipient (5.1.1, 5.2.1 ...) suppresses the address; ``about_recipient=False`` (a
    refused MAIL FROM, the greeting, EHLO) never reads it as about the recipient.
    """
    status = smtp_enhanced_status(code, reply)
    raw = f"{code} {status}" if status else str(code)
    tables: list[tuple[str | int | None, dict[Any, tuple[OutcomeClass, str]]]] = [
        (status, SMTP_SENDER_STATUSES),
        (code, SMTP_REPLY_CODES),
        (status.rpartition(".")[0] if status else None, SMTP_STATUS_SUBJECTS),
    ]
    if about_recipient:
        tables.insert(0, (status, SMTP_RECIPIENT_STATUSES))
    for key, table in tables:
        if key is not None and key in table:
            outcome_class, our_code = table[key]
            return Outcome(outcome_class, our_code, raw)
    outcome_class, our_code = SMTP_REPLIES.get(code // 100, SMTP_REPLIES[4])
    return Outcome(outcome_class, our_code, raw)


# --- Suppression and precedence ------------------------------------------------------------

# Codes whose outcome puts the address or number on the org's suppression list (complaints
# suppress by their class): permanent bounces and opt-outs, and the Twilio codes that mean
# the number itself cannot receive SMS.
SUPPRESSING_CODES: frozenset[str] = frozenset(
    {
        "bounce_general",
        "bounce_no_email",
        "bounce_suppressed",
        "bounce_on_account_suppression_list",
        "bounce_permanent",
        "opted_out",
        "invalid_to_number",
        "not_mobile_number",
        "landline_number",
        "unknown_destination",
        "landline_or_unreachable",
        "message_blocked",
        *(code for _, code in SMTP_RECIPIENT_STATUSES.values()),
    }
)

# Precedence of outcome classes, lowest first.
PRECEDENCE: tuple[OutcomeClass, ...] = (
    OutcomeClass.UNKNOWN,
    OutcomeClass.TEMPORARY,
    OutcomeClass.DELIVERED,
    OutcomeClass.CONFIGURATION,
    OutcomeClass.PERMANENT,
    OutcomeClass.COMPLAINED,
)


def supersedes(new: OutcomeClass, old: OutcomeClass | None) -> bool:
    """Whether an outcome of class ``new`` replaces the stored outcome of class ``old``.

    Events may arrive late, out of order or twice, so an outcome only replaces a weaker one:

        (none) < unknown < temporary < delivered < configuration < permanent < complained

    So a late Delivery never overwrites a permanent bounce or a complaint; a permanent bounce
    or a complaint overwrites delivered or temporary; a complaint outranks a bounce (the
    recipient objected). The same class again is a duplicate and changes nothing.
    """
    if old is None:
        return True
    return PRECEDENCE.index(new) > PRECEDENCE.index(old)


# --- The table, for people -----------------------------------------------------------------


def outcome_table() -> list[tuple[str, str, str, str, str]]:
    """Every provider answer we know: (provider, answer, outcome class, code, meaning)."""
    rows: list[tuple[str, str, str, str]] = [
        ("SES API", code, cls.value, ours) for code, (cls, ours) in SES_ERRORS.items()
    ]
    rows.append(("SES API", "any other error", OutcomeClass.UNKNOWN.value, SES_UNKNOWN))
    rows.append(
        (
            "SES / SMTP / Twilio / AWS",
            "connection error or timeout",
            "temporary",
            CONNECTION_ERROR_CODE,
        )
    )
    rows += [
        ("SES event", f"Bounce {kind} / {sub}", cls.value, ours)
        for (kind, sub), (cls, ours) in SES_BOUNCES.items()
    ]
    rows += [
        ("SES event", f"Bounce {kind} / other subtype", cls.value, ours)
        for kind, (cls, ours) in SES_BOUNCE_TYPES.items()
        if kind != "Undetermined"
    ]
    rows.append(("SES event", "Complaint", OutcomeClass.COMPLAINED.value, "complaint"))
    rows.append(("SES event", "Delivery", OutcomeClass.DELIVERED.value, DELIVERED))
    rows += [
        ("Twilio", f"error {code}", cls.value, ours) for code, (cls, ours) in TWILIO_ERRORS.items()
    ]
    rows.append(("Twilio", "any other error code", OutcomeClass.UNKNOWN.value, TWILIO_UNKNOWN))
    rows += [
        ("Twilio", f"HTTP {status}, unlisted code", cls.value, ours)
        for status, (cls, ours) in TWILIO_HTTP_STATUSES.items()
    ]
    rows.append(("Twilio callback", "delivered", OutcomeClass.DELIVERED.value, DELIVERED))
    rows += [
        ("AWS SMS", f"Reason {reason}", cls.value, ours)
        for reason, (cls, ours) in AWS_SMS_REASONS.items()
    ]
    rows += [("AWS SMS", code, cls.value, ours) for code, (cls, ours) in AWS_SMS_ERRORS.items()]
    rows.append(("AWS SMS", "any other error", OutcomeClass.UNKNOWN.value, AWS_SMS_UNKNOWN))
    rows += [
        ("SMTP", f"5xx {status} to RCPT or DATA", cls.value, ours)
        for status, (cls, ours) in SMTP_RECIPIENT_STATUSES.items()
    ]
    rows += [
        ("SMTP", f"5xx {status}", cls.value, ours)
        for status, (cls, ours) in SMTP_SENDER_STATUSES.items()
    ]
    rows += [
        ("SMTP", f"{code} reply", cls.value, ours) for code, (cls, ours) in SMTP_REPLY_CODES.items()
    ]
    rows += [
        ("SMTP", f"5xx {subject}.x (other)", cls.value, ours)
        for subject, (cls, ours) in SMTP_STATUS_SUBJECTS.items()
    ]
    rows += [
        ("SMTP", f"{digit}xx reply", cls.value, ours) for digit, (cls, ours) in SMTP_REPLIES.items()
    ]
    rows.append(
        ("SMTP", "login, STARTTLS or certificate refused", "configuration", "smtp_configuration")
    )
    rows.append(("Twilio callback", "undelivered / failed", "by ErrorCode", "as the error"))
    return [(*row, describe(row[3]) if row[3] in OUTCOME_DESCRIPTIONS else "") for row in rows]


def outcome_table_markdown() -> str:
    """The table as Markdown, exactly as the README carries it."""
    lines = [
        "| provider | answer | outcome | code | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {' | '.join(row)} |" for row in outcome_table()]
    return "\n".join(lines) + "\n"
