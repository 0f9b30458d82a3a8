"""Email providers' answers as tables: SES API errors, SES events, SMTP replies.

Pure functions over plain tables: no database, no HTTP. Each table row can be checked line
by line against the provider's documentation:

- SES API errors: SESv2 API reference, ``SendEmail`` "Errors", and AWS "Common Errors".
- SES events: "Contents of event data that Amazon SES publishes to Amazon SNS" (bounce
  types and subtypes), which also covers the older ``notificationType`` notifications.
- SMTP: RFC 5321 reply codes, RFC 3463 enhanced status codes (the IANA "SMTP Enhanced
  Status Codes" registry; 5.1.10 is RFC 7505's null MX) and RFC 4954's 530.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from portalflow.models import OutcomeClass, OutcomeCode

from .outcomes import Outcome

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


def classify_ses_error(code: str) -> Outcome:
    """Classify an SES API error code; a code not in `SES_ERRORS` is unknown."""
    outcome_class, our_code = SES_ERRORS.get(code, (OutcomeClass.UNKNOWN, OutcomeCode.SES_UNKNOWN))
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
SES_EVENT_TYPES = ("Bounce", "Complaint", "Delivery")


def classify_ses_bounce(bounce_type: str, bounce_subtype: str) -> Outcome:
    """Classify one SES bounce by its type and subtype."""
    outcome_class, code = SES_BOUNCES.get(
        (bounce_type, bounce_subtype),
        SES_BOUNCE_TYPES.get(bounce_type, (OutcomeClass.UNKNOWN, OutcomeCode.BOUNCE_UNKNOWN)),
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
        outcome = Outcome(OutcomeClass.DELIVERED, OutcomeCode.DELIVERED, "Delivery")
        recipients = list(delivery.get("recipients", []))
    else:
        raise ValueError(
            f"unsupported SES event type {event_type!r}: expected one of "
            f"{', '.join(SES_EVENT_TYPES)} in eventType or notificationType"
        )
    return [(str(address).strip(), outcome) for address in recipients if address]


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
