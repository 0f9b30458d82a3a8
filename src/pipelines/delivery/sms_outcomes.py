"""SMS providers' answers as tables: Twilio errors and statuses, AWS End User Messaging.

Pure functions over plain tables: no database, no HTTP. Each table row can be checked line
by line against the provider's documentation:

- Twilio: the error dictionary, https://www.twilio.com/docs/api/errors/<code>, and the
  Message resource's status values.
- AWS End User Messaging SMS: ``SendTextMessage``'s errors and their ``Reason`` values.
"""

from __future__ import annotations

from portalflow.models import OutcomeClass, OutcomeCode

from .outcomes import Outcome

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
        return Outcome(OutcomeClass.UNKNOWN, OutcomeCode.TWILIO_UNKNOWN, raw)
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
        return Outcome(OutcomeClass.DELIVERED, OutcomeCode.DELIVERED, status)
    if error_code is None or str(error_code).strip() == "":
        return Outcome(OutcomeClass.UNKNOWN, OutcomeCode.TWILIO_UNKNOWN, status)
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


def classify_aws_sms_error(code: str, reason: str = "") -> Outcome:
    """Classify an AWS SMS error by its Reason, else its code; anything else is unknown."""
    for key, table in ((reason, AWS_SMS_REASONS), (code, AWS_SMS_ERRORS)):
        if key and key in table:
            outcome_class, our_code = table[key]
            return Outcome(outcome_class, our_code, key)
    return Outcome(OutcomeClass.UNKNOWN, OutcomeCode.AWS_SMS_UNKNOWN, reason or code)
