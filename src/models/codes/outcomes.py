"""What a provider said about a message: one stable code per answer, and its meaning.

The tables that map each provider's answers to these codes are in
``pipelines/delivery/email_outcomes.py`` and ``sms_outcomes.py``; a test holds every code they
give to this list.
"""

from __future__ import annotations

from enum import StrEnum


class OutcomeCode(StrEnum):
    """A provider outcome (an API error, a bounce, a complaint, a delivery report)."""

    DELIVERED = "delivered"
    CONNECTION_ERROR = "connection_error"
    SES_THROTTLED = "ses_throttled"
    SES_QUOTA_EXCEEDED = "ses_quota_exceeded"
    SES_REJECTED = "ses_rejected"
    MAIL_FROM_DOMAIN_NOT_VERIFIED = "mail_from_domain_not_verified"
    ACCOUNT_SUSPENDED = "account_suspended"
    SENDING_PAUSED = "sending_paused"
    SES_UNKNOWN = "ses_unknown"
    SES_CONFIGURATION = "ses_configuration"
    SES_UNAVAILABLE = "ses_unavailable"
    BOUNCE_GENERAL = "bounce_general"
    BOUNCE_NO_EMAIL = "bounce_no_email"
    BOUNCE_SUPPRESSED = "bounce_suppressed"
    BOUNCE_ON_ACCOUNT_SUPPRESSION_LIST = "bounce_on_account_suppression_list"
    BOUNCE_PERMANENT = "bounce_permanent"
    BOUNCE_TRANSIENT_GENERAL = "bounce_transient_general"
    BOUNCE_MAILBOX_FULL = "bounce_mailbox_full"
    BOUNCE_MESSAGE_TOO_LARGE = "bounce_message_too_large"
    BOUNCE_CONTENT_REJECTED = "bounce_content_rejected"
    BOUNCE_ATTACHMENT_REJECTED = "bounce_attachment_rejected"
    BOUNCE_TRANSIENT = "bounce_transient"
    BOUNCE_UNDETERMINED = "bounce_undetermined"
    BOUNCE_UNKNOWN = "bounce_unknown"
    COMPLAINT = "complaint"
    INVALID_TO_NUMBER = "invalid_to_number"
    NOT_MOBILE_NUMBER = "not_mobile_number"
    LANDLINE_NUMBER = "landline_number"
    UNKNOWN_DESTINATION = "unknown_destination"
    LANDLINE_OR_UNREACHABLE = "landline_or_unreachable"
    MESSAGE_BLOCKED = "message_blocked"
    OPTED_OUT = "opted_out"
    REGION_NOT_ENABLED = "region_not_enabled"
    CARRIER_FILTERED = "carrier_filtered"
    TOLL_FREE_NOT_VERIFIED = "toll_free_not_verified"
    TRIAL_UNVERIFIED_NUMBER = "trial_unverified_number"
    TWILIO_THROTTLED = "twilio_throttled"
    QUEUE_OVERFLOW = "queue_overflow"
    UNREACHABLE_HANDSET = "unreachable_handset"
    TWILIO_UNKNOWN = "twilio_unknown"
    TWILIO_CONFIGURATION = "twilio_configuration"
    TWILIO_REJECTED = "twilio_rejected"
    AWS_SMS_THROTTLED = "aws_sms_throttled"
    AWS_SMS_REJECTED = "aws_sms_rejected"
    AWS_SMS_CONFIGURATION = "aws_sms_configuration"
    AWS_SMS_UNAVAILABLE = "aws_sms_unavailable"
    AWS_SMS_UNKNOWN = "aws_sms_unknown"
    SMTP_REJECTED = "smtp_rejected"
    SMTP_TEMPORARY = "smtp_temporary"
    SMTP_CONFIGURATION = "smtp_configuration"
    SMTP_NO_SUCH_USER = "smtp_no_such_user"
    SMTP_NO_SUCH_DOMAIN = "smtp_no_such_domain"
    SMTP_BAD_ADDRESS = "smtp_bad_address"
    SMTP_MAILBOX_MOVED = "smtp_mailbox_moved"
    SMTP_NULL_MX = "smtp_null_mx"
    SMTP_MAILBOX_DISABLED = "smtp_mailbox_disabled"
    SMTP_POLICY_REJECTED = "smtp_policy_rejected"


OUTCOME_DESCRIPTIONS: dict[str, str] = {
    OutcomeCode.DELIVERED: "The provider reports the message was delivered.",
    OutcomeCode.CONNECTION_ERROR: "The provider could not be reached, or did not answer in time.",
    # SES API errors
    OutcomeCode.SES_THROTTLED: "SES refused the request for now: the sending rate was exceeded.",
    OutcomeCode.SES_QUOTA_EXCEEDED: (
        "SES refused the request: the account's sending quota is used up "
        "for now (it resets within 24 hours)."
    ),
    OutcomeCode.SES_REJECTED: "SES rejected the message (its content, or an unverified sender).",
    OutcomeCode.MAIL_FROM_DOMAIN_NOT_VERIFIED: (
        "The custom MAIL FROM domain is not verified in SES."
    ),
    OutcomeCode.ACCOUNT_SUSPENDED: "The SES account is suspended from sending.",
    OutcomeCode.SENDING_PAUSED: "Sending is paused for the SES account or configuration set.",
    OutcomeCode.SES_UNKNOWN: "SES answered with an error we do not know.",
    OutcomeCode.SES_CONFIGURATION: "SES refused our credentials, permissions or configuration set.",
    OutcomeCode.SES_UNAVAILABLE: "SES had an internal failure; try again later.",
    # SES bounce events
    OutcomeCode.BOUNCE_GENERAL: "The receiving server refused the address for good.",
    OutcomeCode.BOUNCE_NO_EMAIL: "The address does not exist.",
    OutcomeCode.BOUNCE_SUPPRESSED: (
        "SES did not send: the address is on SES's global suppression list."
    ),
    OutcomeCode.BOUNCE_ON_ACCOUNT_SUPPRESSION_LIST: (
        "SES did not send: the address is on the account's suppression list."
    ),
    OutcomeCode.BOUNCE_PERMANENT: (
        "The address was refused for good (an unlisted permanent bounce)."
    ),
    OutcomeCode.BOUNCE_TRANSIENT_GENERAL: "The receiving server refused the message for now.",
    OutcomeCode.BOUNCE_MAILBOX_FULL: "The recipient's mailbox is full.",
    OutcomeCode.BOUNCE_MESSAGE_TOO_LARGE: "The message was too large for the receiving server.",
    OutcomeCode.BOUNCE_CONTENT_REJECTED: "The receiving server refused the message's content.",
    OutcomeCode.BOUNCE_ATTACHMENT_REJECTED: (
        "The receiving server refused the message's attachment."
    ),
    OutcomeCode.BOUNCE_TRANSIENT: "The message was refused for now (an unlisted transient bounce).",
    OutcomeCode.BOUNCE_UNDETERMINED: "The message bounced for a reason SES could not determine.",
    OutcomeCode.BOUNCE_UNKNOWN: "The message bounced with a bounce type we do not know.",
    # SES complaint events
    OutcomeCode.COMPLAINT: "The recipient marked the message as spam; the address is suppressed.",
    # Twilio errors
    OutcomeCode.INVALID_TO_NUMBER: "The 'To' phone number is invalid.",
    OutcomeCode.NOT_MOBILE_NUMBER: "The 'To' number is not a valid mobile number.",
    OutcomeCode.LANDLINE_NUMBER: "The 'To' number is a landline and cannot receive SMS.",
    OutcomeCode.UNKNOWN_DESTINATION: "The destination handset is unknown to the carrier.",
    OutcomeCode.LANDLINE_OR_UNREACHABLE: "The number is a landline or its carrier is unreachable.",
    OutcomeCode.MESSAGE_BLOCKED: "The carrier blocked the message to this number.",
    OutcomeCode.OPTED_OUT: "The recipient opted out (replied STOP); the number is suppressed.",
    OutcomeCode.REGION_NOT_ENABLED: (
        "The Twilio account may not send SMS to this country or region."
    ),
    OutcomeCode.CARRIER_FILTERED: (
        "The carrier filtered the message (e.g. DLT template or sender registration)."
    ),
    OutcomeCode.TOLL_FREE_NOT_VERIFIED: "The toll-free sender has not been verified.",
    OutcomeCode.TRIAL_UNVERIFIED_NUMBER: (
        "A Twilio trial account may only send to verified numbers."
    ),
    OutcomeCode.TWILIO_THROTTLED: "Twilio refused the request for now: too many requests.",
    OutcomeCode.QUEUE_OVERFLOW: "Twilio's queue for the sender overflowed; try again later.",
    OutcomeCode.UNREACHABLE_HANDSET: (
        "The handset is unreachable (switched off or out of coverage)."
    ),
    OutcomeCode.TWILIO_UNKNOWN: (
        "Twilio reported an unknown error, or an error code we do not know."
    ),
    OutcomeCode.TWILIO_CONFIGURATION: (
        "Twilio refused our account, sender or service configuration."
    ),
    OutcomeCode.TWILIO_REJECTED: "Twilio refused the message itself (empty or too long).",
    # AWS End User Messaging SMS
    OutcomeCode.AWS_SMS_THROTTLED: "AWS SMS refused the request for now: over the sending rate.",
    OutcomeCode.AWS_SMS_REJECTED: "AWS SMS refused the message (number, DLT ids or body).",
    OutcomeCode.AWS_SMS_CONFIGURATION: (
        "The AWS SMS account, sender id or country setup is incomplete."
    ),
    OutcomeCode.AWS_SMS_UNAVAILABLE: "AWS SMS had an internal failure; try again later.",
    OutcomeCode.AWS_SMS_UNKNOWN: "AWS SMS answered with an error we do not know.",
    # SMTP
    OutcomeCode.SMTP_REJECTED: "The SMTP server refused the message for good (a 5xx reply).",
    OutcomeCode.SMTP_TEMPORARY: "The SMTP server refused the message for now (a 4xx reply).",
    OutcomeCode.SMTP_CONFIGURATION: "Our SMTP login, STARTTLS or certificate setup was refused.",
    OutcomeCode.SMTP_NO_SUCH_USER: (
        "The receiving server says the mailbox does not exist; suppressed."
    ),
    OutcomeCode.SMTP_NO_SUCH_DOMAIN: (
        "The address's domain does not exist or takes no mail; suppressed."
    ),
    OutcomeCode.SMTP_BAD_ADDRESS: "The receiving server says the address is malformed; suppressed.",
    OutcomeCode.SMTP_MAILBOX_MOVED: (
        "The mailbox has moved and gives no forwarding address; suppressed."
    ),
    OutcomeCode.SMTP_NULL_MX: (
        "The address's domain publishes a null MX: it takes no mail; suppressed."
    ),
    OutcomeCode.SMTP_MAILBOX_DISABLED: "The mailbox is disabled and takes no mail; suppressed.",
    OutcomeCode.SMTP_POLICY_REJECTED: "The SMTP server refused us or our message by policy (5.7.x: "
    "relaying, SPF/DMARC, spam filter ...); the address itself is not suppressed.",
}
