"""Classification of provider answers: one test per table row, plus events and precedence."""

from __future__ import annotations

from typing import Any

import pytest

from portalflow.models import OUTCOME_DESCRIPTIONS, OutcomeCode
from portalflow.pipelines.delivery import email_outcomes, outcomes, sms_outcomes
from portalflow.pipelines.delivery.email_outcomes import (
    classify_ses_bounce,
    classify_ses_error,
    classify_ses_event,
    ses_message_id,
)
from portalflow.pipelines.delivery.outcomes import (
    CONNECTION_ERROR,
    Outcome,
    OutcomeClass,
    describe,
    supersedes,
)
from portalflow.pipelines.delivery.sms_outcomes import classify_twilio_error, classify_twilio_status

C = OutcomeClass


def bounce_event(
    bounce_type: str, subtype: str, *addresses: str, key: str = "eventType"
) -> dict[str, Any]:
    return {
        key: "Bounce",
        "bounce": {
            "feedbackId": "0100018c-feedback",
            "bounceType": bounce_type,
            "bounceSubType": subtype,
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
                for address in addresses
            ],
            "timestamp": "2024-05-01T10:00:01.000Z",
            "reportingMTA": "dns; a1-2.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": {
            "timestamp": "2024-05-01T10:00:00.000Z",
            "source": "portal@example.org",
            "messageId": "0102018f-msg-id",
            "destination": list(addresses),
        },
    }


# --- SES API errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ses_code", "outcome_class", "code"),
    [
        ("TooManyRequestsException", C.TEMPORARY, "ses_throttled"),
        ("Throttling", C.TEMPORARY, "ses_throttled"),
        ("ThrottlingException", C.TEMPORARY, "ses_throttled"),
        ("MessageRejected", C.PERMANENT, "ses_rejected"),
        ("MailFromDomainNotVerifiedException", C.CONFIGURATION, "mail_from_domain_not_verified"),
        ("AccountSuspendedException", C.CONFIGURATION, "account_suspended"),
        ("SendingPausedException", C.CONFIGURATION, "sending_paused"),
        ("LimitExceededException", C.TEMPORARY, "ses_quota_exceeded"),
        ("BadRequestException", C.PERMANENT, "ses_rejected"),
        ("NotFoundException", C.CONFIGURATION, "ses_configuration"),
        ("InternalFailure", C.TEMPORARY, "ses_unavailable"),
        ("InternalServiceErrorException", C.TEMPORARY, "ses_unavailable"),
        ("ServiceUnavailable", C.TEMPORARY, "ses_unavailable"),
        ("AccessDeniedException", C.CONFIGURATION, "ses_configuration"),
        ("UnrecognizedClientException", C.CONFIGURATION, "ses_configuration"),
        ("InvalidClientTokenId", C.CONFIGURATION, "ses_configuration"),
        ("SignatureDoesNotMatch", C.CONFIGURATION, "ses_configuration"),
        ("MissingAuthenticationToken", C.CONFIGURATION, "ses_configuration"),
        ("SomethingNewException", C.UNKNOWN, "ses_unknown"),
        ("", C.UNKNOWN, "ses_unknown"),
    ],
)
def test_ses_errors(ses_code: str, outcome_class: OutcomeClass, code: str) -> None:
    assert classify_ses_error(ses_code) == Outcome(outcome_class, code, ses_code)


def test_every_ses_error_row_is_tested() -> None:
    assert set(email_outcomes.SES_ERRORS) == {
        "LimitExceededException",
        "BadRequestException",
        "NotFoundException",
        "InternalFailure",
        "InternalServiceErrorException",
        "ServiceUnavailable",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
    }


def test_connection_error_is_temporary() -> None:
    assert CONNECTION_ERROR.outcome_class is C.TEMPORARY
    assert CONNECTION_ERROR.code == "connection_error"
    assert CONNECTION_ERROR.retryable
    assert not CONNECTION_ERROR.suppresses


def test_message_rejected_does_not_suppress_the_address() -> None:
    outcome = classify_ses_error("MessageRejected")
    assert not outcome.retryable
    assert not outcome.suppresses


# --- SES events -------------------------------------------------------------------------

SES_BOUNCE_ROWS = [
    ("Permanent", "General", C.PERMANENT, "bounce_general"),
    ("Permanent", "NoEmail", C.PERMANENT, "bounce_no_email"),
    ("Permanent", "Suppressed", C.PERMANENT, "bounce_suppressed"),
    ("Permanent", "OnAccountSuppressionList", C.PERMANENT, "bounce_on_account_suppression_list"),
    ("Transient", "General", C.TEMPORARY, "bounce_transient_general"),
    ("Transient", "MailboxFull", C.TEMPORARY, "bounce_mailbox_full"),
    ("Transient", "MessageTooLarge", C.TEMPORARY, "bounce_message_too_large"),
    ("Transient", "ContentRejected", C.TEMPORARY, "bounce_content_rejected"),
    ("Transient", "AttachmentRejected", C.TEMPORARY, "bounce_attachment_rejected"),
    ("Undetermined", "Undetermined", C.TEMPORARY, "bounce_undetermined"),
]


@pytest.mark.parametrize(("bounce_type", "subtype", "outcome_class", "code"), SES_BOUNCE_ROWS)
def test_ses_bounces(
    bounce_type: str, subtype: str, outcome_class: OutcomeClass, code: str
) -> None:
    event = bounce_event(bounce_type, subtype, "ann@example.com")
    expected = Outcome(outcome_class, code, f"{bounce_type}/{subtype}")
    assert classify_ses_event(event) == [("ann@example.com", expected)]
    assert expected.suppresses is (outcome_class is C.PERMANENT)
    assert expected.retryable is (outcome_class is C.TEMPORARY)


def test_every_ses_bounce_row_is_tested() -> None:
    assert set(email_outcomes.SES_BOUNCES) == {(t, s) for t, s, _, _ in SES_BOUNCE_ROWS}


@pytest.mark.parametrize(
    ("bounce_type", "subtype", "outcome_class", "code"),
    [
        ("Permanent", "UnsubscribedRecipient", C.PERMANENT, "bounce_permanent"),
        ("Transient", "SomethingNew", C.TEMPORARY, "bounce_transient"),
        ("Undetermined", "", C.TEMPORARY, "bounce_undetermined"),
        ("Weird", "General", C.UNKNOWN, "bounce_unknown"),
    ],
)
def test_ses_bounce_fallbacks(
    bounce_type: str, subtype: str, outcome_class: OutcomeClass, code: str
) -> None:
    assert classify_ses_bounce(bounce_type, subtype) == Outcome(
        outcome_class, code, f"{bounce_type}/{subtype}"
    )


def test_multi_recipient_bounce_names_each_recipient() -> None:
    event = bounce_event("Permanent", "NoEmail", "ann@example.com", "bob@example.net")
    result = classify_ses_event(event)
    assert [address for address, _ in result] == ["ann@example.com", "bob@example.net"]
    assert {outcome.code for _, outcome in result} == {"bounce_no_email"}
    assert ses_message_id(event) == "0102018f-msg-id"


def test_notification_type_is_accepted() -> None:
    event = bounce_event("Transient", "MailboxFull", "ann@example.com", key="notificationType")
    [(address, outcome)] = classify_ses_event(event)
    assert address == "ann@example.com"
    assert outcome.code == "bounce_mailbox_full"


def test_complaint_event() -> None:
    event = {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complainedRecipients": [
                {"emailAddress": "ann@example.com"},
                {"emailAddress": "bob@example.net"},
            ],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2024-05-01T10:05:00.000Z",
            "timestamp": "2024-05-01T10:05:01.000Z",
            "feedbackId": "0100018c-complaint",
        },
        "mail": {"messageId": "0102018f-msg-id", "source": "portal@example.org"},
    }
    result = classify_ses_event(event)
    assert [address for address, _ in result] == ["ann@example.com", "bob@example.net"]
    outcome = result[0][1]
    assert outcome == Outcome(C.COMPLAINED, "complaint", "abuse")
    assert outcome.suppresses
    assert not outcome.retryable


def test_delivery_event() -> None:
    event = {
        "eventType": "Delivery",
        "delivery": {
            "timestamp": "2024-05-01T10:00:02.000Z",
            "processingTimeMillis": 546,
            "recipients": ["ann@example.com"],
            "smtpResponse": "250 ok",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        },
        "mail": {"messageId": "0102018f-msg-id"},
    }
    [(address, outcome)] = classify_ses_event(event)
    assert address == "ann@example.com"
    assert outcome == Outcome(C.DELIVERED, "delivered", "Delivery")
    assert not outcome.suppresses
    assert not outcome.retryable


@pytest.mark.parametrize("event", [{"eventType": "Open"}, {"notificationType": "Send"}, {}])
def test_unknown_event_type_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unsupported SES event type"):
        classify_ses_event(event)


def test_message_id_missing_is_refused() -> None:
    with pytest.raises(ValueError, match="messageId"):
        ses_message_id({"eventType": "Delivery"})


# --- Twilio -----------------------------------------------------------------------------

TWILIO_ROWS = [
    (21211, C.PERMANENT, "invalid_to_number"),
    (21614, C.PERMANENT, "not_mobile_number"),
    (21635, C.PERMANENT, "landline_number"),
    (30005, C.PERMANENT, "unknown_destination"),
    (30006, C.PERMANENT, "landline_or_unreachable"),
    (30004, C.PERMANENT, "message_blocked"),
    (21610, C.PERMANENT, "opted_out"),
    (21408, C.CONFIGURATION, "region_not_enabled"),
    (30007, C.CONFIGURATION, "carrier_filtered"),
    (30032, C.CONFIGURATION, "toll_free_not_verified"),
    (21608, C.CONFIGURATION, "trial_unverified_number"),
    (20429, C.TEMPORARY, "twilio_throttled"),
    (30001, C.TEMPORARY, "queue_overflow"),
    (30003, C.TEMPORARY, "unreachable_handset"),
    (30008, C.UNKNOWN, "twilio_unknown"),
]


@pytest.mark.parametrize(("twilio_code", "outcome_class", "code"), TWILIO_ROWS)
def test_twilio_errors(twilio_code: int, outcome_class: OutcomeClass, code: str) -> None:
    outcome = classify_twilio_error(twilio_code)
    assert outcome == Outcome(outcome_class, code, str(twilio_code))
    assert outcome.suppresses is (outcome_class is C.PERMANENT)
    # The same row reached through a status callback (ErrorCode arrives as form text).
    assert classify_twilio_status("undelivered", str(twilio_code)) == outcome
    assert classify_twilio_status("failed", twilio_code) == outcome


# Rows beyond the list: answers of the Messages API about our own setup or message.
TWILIO_API_ROWS = [
    (20003, C.CONFIGURATION, "twilio_configuration"),
    (20404, C.CONFIGURATION, "twilio_configuration"),
    (21212, C.CONFIGURATION, "twilio_configuration"),
    (21606, C.CONFIGURATION, "twilio_configuration"),
    (21602, C.PERMANENT, "twilio_rejected"),
    (21617, C.PERMANENT, "twilio_rejected"),
]


@pytest.mark.parametrize(("twilio_code", "outcome_class", "code"), TWILIO_API_ROWS)
def test_twilio_api_errors(twilio_code: int, outcome_class: OutcomeClass, code: str) -> None:
    outcome = sms_outcomes.classify_twilio_api_error(twilio_code, 400)
    assert outcome == Outcome(outcome_class, code, str(twilio_code))
    assert not outcome.suppresses  # about our setup or the message, not the number


@pytest.mark.parametrize(
    ("http_status", "outcome_class", "code"),
    [
        (401, C.CONFIGURATION, "twilio_configuration"),
        (403, C.CONFIGURATION, "twilio_configuration"),
        (429, C.TEMPORARY, "twilio_throttled"),
        (500, C.UNKNOWN, "twilio_unknown"),
    ],
)
def test_twilio_http_status_fallback(
    http_status: int, outcome_class: OutcomeClass, code: str
) -> None:
    outcome = sms_outcomes.classify_twilio_api_error(99999, http_status)
    assert (outcome.outcome_class, outcome.code) == (outcome_class, code)


def test_every_twilio_row_is_tested() -> None:
    tested = {row[0] for row in TWILIO_ROWS} | {row[0] for row in TWILIO_API_ROWS}
    assert set(sms_outcomes.TWILIO_ERRORS) == tested
    assert set(sms_outcomes.TWILIO_HTTP_STATUSES) == {401, 403, 429}


@pytest.mark.parametrize(("twilio_code", "raw"), [(99999, "99999"), (None, ""), ("abc", "abc")])
def test_twilio_unlisted_code_is_unknown(twilio_code: int | str | None, raw: str) -> None:
    outcome = classify_twilio_error(twilio_code)
    assert outcome == Outcome(C.UNKNOWN, "twilio_unknown", raw)
    assert outcome.retryable


def test_opted_out_suppresses() -> None:
    assert classify_twilio_error(21610).suppresses


def test_twilio_status_delivered() -> None:
    assert classify_twilio_status("delivered", None) == Outcome(
        C.DELIVERED, "delivered", "delivered"
    )


@pytest.mark.parametrize("status", ["undelivered", "failed"])
def test_twilio_status_failed_without_code_is_unknown(status: str) -> None:
    assert classify_twilio_status(status, None) == Outcome(C.UNKNOWN, "twilio_unknown", status)
    assert classify_twilio_status(status, "") == Outcome(C.UNKNOWN, "twilio_unknown", status)


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "accepted", "scheduled"])
def test_twilio_status_not_final(status: str) -> None:
    assert classify_twilio_status(status, None) is None


def test_twilio_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported Twilio message status"):
        classify_twilio_status("teleported", None)


# --- Precedence ---------------------------------------------------------------------------


def test_late_delivery_keeps_the_bounce() -> None:
    assert not supersedes(C.DELIVERED, C.PERMANENT)
    assert not supersedes(C.DELIVERED, C.COMPLAINED)


def test_bounce_after_delivery_wins() -> None:
    assert supersedes(C.PERMANENT, C.DELIVERED)
    assert supersedes(C.COMPLAINED, C.DELIVERED)
    assert supersedes(C.PERMANENT, C.TEMPORARY)
    assert supersedes(C.COMPLAINED, C.TEMPORARY)
    assert supersedes(C.DELIVERED, C.TEMPORARY)


@pytest.mark.parametrize("outcome_class", list(OutcomeClass))
def test_duplicate_changes_nothing(outcome_class: OutcomeClass) -> None:
    assert not supersedes(outcome_class, outcome_class)
    assert supersedes(outcome_class, None)


def test_replayed_out_of_order_events_end_in_the_strongest() -> None:
    delivery = {
        "eventType": "Delivery",
        "delivery": {"recipients": ["ann@example.com"]},
        "mail": {"messageId": "m"},
    }
    bounce = bounce_event("Permanent", "General", "ann@example.com")
    for order in ([bounce, delivery, bounce], [delivery, bounce, delivery]):
        current: OutcomeClass | None = None
        for event in order:
            [(_, outcome)] = classify_ses_event(event)
            if supersedes(outcome.outcome_class, current):
                current = outcome.outcome_class
        assert current is C.PERMANENT


# --- Descriptions -------------------------------------------------------------------------


def _every_code() -> set[str]:
    codes = {code for _, code in email_outcomes.SES_ERRORS.values()}
    codes |= {code for _, code in email_outcomes.SES_BOUNCES.values()}
    codes |= {code for _, code in email_outcomes.SES_BOUNCE_TYPES.values()}
    codes |= {code for _, code in sms_outcomes.TWILIO_ERRORS.values()}
    codes |= {code for _, code in sms_outcomes.AWS_SMS_ERRORS.values()}
    codes |= {code for _, code in sms_outcomes.AWS_SMS_REASONS.values()}
    codes |= {code for _, code in email_outcomes.SMTP_REPLIES.values()}
    for table in (
        email_outcomes.SMTP_RECIPIENT_STATUSES,
        email_outcomes.SMTP_SENDER_STATUSES,
        email_outcomes.SMTP_STATUS_SUBJECTS,
        email_outcomes.SMTP_REPLY_CODES,
    ):
        codes |= {code for _, code in table.values()}
    codes |= {
        OutcomeCode.AWS_SMS_UNKNOWN,
        "smtp_configuration",
    }
    codes |= {
        OutcomeCode.SES_UNKNOWN,
        OutcomeCode.BOUNCE_UNKNOWN,
        OutcomeCode.TWILIO_UNKNOWN,
        OutcomeCode.DELIVERED,
        CONNECTION_ERROR.code,
        "complaint",
    }
    return codes | set(outcomes.SUPPRESSING_CODES)


def test_every_code_has_a_meaning() -> None:
    codes = _every_code()
    assert codes <= set(OUTCOME_DESCRIPTIONS)
    for code in codes:
        assert describe(code) == OUTCOME_DESCRIPTIONS[code]
        assert code.isidentifier() and code == code.lower(), code
    assert describe("no_such_code")


def test_no_description_without_a_code() -> None:
    assert set(OUTCOME_DESCRIPTIONS) == _every_code()


# --- AWS SMS and SMTP ----------------------------------------------------------------------


@pytest.mark.parametrize(("aws_code", "row"), list(sms_outcomes.AWS_SMS_ERRORS.items()))
def test_aws_sms_errors(aws_code: str, row: tuple[OutcomeClass, str]) -> None:
    assert sms_outcomes.classify_aws_sms_error(aws_code) == Outcome(row[0], row[1], aws_code)


@pytest.mark.parametrize(("reason", "row"), list(sms_outcomes.AWS_SMS_REASONS.items()))
def test_aws_sms_reasons_win_over_codes(reason: str, row: tuple[OutcomeClass, str]) -> None:
    outcome = sms_outcomes.classify_aws_sms_error("ValidationException", reason)
    assert (outcome.outcome_class, outcome.code) == row


def test_an_aws_opt_out_suppresses_and_unknown_errors_are_unknown() -> None:
    assert sms_outcomes.classify_aws_sms_error(
        "ConflictException", "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    ).suppresses
    assert sms_outcomes.classify_aws_sms_error("Weird").outcome_class is C.UNKNOWN


@pytest.mark.parametrize(
    ("reply", "outcome_class", "code"),
    [(550, C.PERMANENT, "smtp_rejected"), (554, C.PERMANENT, "smtp_rejected"),
     (451, C.TEMPORARY, "smtp_temporary"), (421, C.TEMPORARY, "smtp_temporary"),
     (999, C.TEMPORARY, "smtp_temporary")],
)  # fmt: skip
def test_smtp_replies(reply: int, outcome_class: OutcomeClass, code: str) -> None:
    outcome = email_outcomes.classify_smtp_reply(reply)
    assert (outcome.outcome_class, outcome.code) == (outcome_class, code)


@pytest.mark.parametrize(
    ("reply", "text", "code", "suppresses"),
    [(550, "5.1.1 <x@example.org>: User unknown", "smtp_no_such_user", True),
     (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", "smtp_null_mx", True),
     (550, "5.2.1 The account is disabled", "smtp_mailbox_disabled", True),
     (553, "5.1.3 Bad recipient address syntax", "smtp_bad_address", True),
     (550, "5.7.1 Service unavailable; client host blocked", "smtp_policy_rejected", False),
     (554, "5.7.26 Unauthenticated email is not accepted (DMARC)", "smtp_policy_rejected", False),
     (535, "5.7.8 Authentication credentials invalid", "smtp_configuration", False),
     (530, "5.7.0 Authentication required", "smtp_configuration", False),
     (550, "No such user here", "smtp_rejected", False),  # no enhanced status: not sure enough
     (550, "4.1.1 mismatched class", "smtp_rejected", False),  # RFC 3463: ignored
     (450, "4.2.1 mailbox busy", "smtp_temporary", False)],
)  # fmt: skip
def test_smtp_enhanced_status_codes(reply: int, text: str, code: str, suppresses: bool) -> None:
    outcome = email_outcomes.classify_smtp_reply(reply, text)
    assert (outcome.code, outcome.suppresses) == (code, suppresses)


def test_a_refused_sender_is_never_about_the_recipient() -> None:
    outcome = email_outcomes.classify_smtp_reply(550, "5.1.1 no such sender", about_recipient=False)
    assert (outcome.code, outcome.suppresses) == ("smtp_rejected", False)


def test_every_smtp_reply_rejecting_the_recipient_suppresses() -> None:
    rejecting = {code for _, code in email_outcomes.SMTP_RECIPIENT_STATUSES.values()}
    assert rejecting <= outcomes.SUPPRESSING_CODES
