"""Provider outcomes: the outcome of an answer, every code's meaning, suppression, precedence.

Pure: no database, no HTTP. Each provider's answers are mapped to an :class:`Outcome` by
a table a reader can check line by line against the provider's documentation: SES and SMTP
in :mod:`.email_outcomes`, Twilio and AWS End User Messaging in :mod:`.sms_outcomes`; the
table for people (the README's) is :mod:`.outcome_table`.

The outcome ``code`` is what is stored on the invitation and shown to admins (see
`describe`); the provider's own code goes to ``raw``, for the detail column.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# A provider refusing for now because requests came too fast: our pace, not the invitation,
# so retrying it does not spend one of the invitation's attempts.
THROTTLED_CODES = frozenset({"ses_throttled", "twilio_throttled", "aws_sms_throttled"})

# Connection refused or reset, connect or read timeout (any provider).
CONNECTION_ERROR = Outcome(OutcomeClass.TEMPORARY, CONNECTION_ERROR_CODE, "connection_error")


# --- Suppression and precedence ------------------------------------------------------------

# Codes whose outcome puts the address or number on the org's suppression list (complaints
# suppress by their class): permanent bounces and opt-outs, and the Twilio codes that mean
# the number itself cannot receive SMS, and the SMTP replies that reject the recipient.
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
        # The SMTP recipient statuses (email_outcomes.SMTP_RECIPIENT_STATUSES):
        "smtp_no_such_user",
        "smtp_no_such_domain",
        "smtp_bad_address",
        "smtp_mailbox_moved",
        "smtp_null_mx",
        "smtp_mailbox_disabled",
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
