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

from portalflow.models import OUTCOME_DESCRIPTIONS, OutcomeClass, OutcomeCode


@dataclass(frozen=True)
class Outcome:
    """One classified provider answer."""

    outcome_class: OutcomeClass
    code: str  # stable snake_case identifier, stored on the row; see models.codes.outcomes
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


def describe(code: str) -> str:
    """The admin-facing meaning of an outcome code."""
    return OUTCOME_DESCRIPTIONS.get(code, "The provider reported an outcome we do not know.")


# A provider refusing for now because requests came too fast: our pace, not the invitation,
# so retrying it does not spend one of the invitation's attempts.
THROTTLED_CODES = frozenset({"ses_throttled", "twilio_throttled", "aws_sms_throttled"})

# Connection refused or reset, connect or read timeout (any provider).
CONNECTION_ERROR = Outcome(OutcomeClass.TEMPORARY, OutcomeCode.CONNECTION_ERROR, "connection_error")


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
