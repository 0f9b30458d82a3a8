"""The outcome table for people: every provider answer we know, as the README carries it."""

from __future__ import annotations

from portalflow.models import OUTCOME_DESCRIPTIONS, OutcomeClass, OutcomeCode

from .email_outcomes import (
    SES_BOUNCE_TYPES,
    SES_BOUNCES,
    SES_ERRORS,
    SMTP_RECIPIENT_STATUSES,
    SMTP_REPLIES,
    SMTP_REPLY_CODES,
    SMTP_SENDER_STATUSES,
    SMTP_STATUS_SUBJECTS,
)
from .outcomes import describe
from .sms_outcomes import (
    AWS_SMS_ERRORS,
    AWS_SMS_REASONS,
    TWILIO_ERRORS,
    TWILIO_HTTP_STATUSES,
)

Row = tuple[str, str, str, str]


def outcome_table() -> list[tuple[str, str, str, str, str]]:
    """Every provider answer we know: (provider, answer, outcome class, code, meaning)."""
    rows = [*_ses_rows(), *_twilio_rows(), *_aws_sms_rows(), *_smtp_rows()]
    rows.append(
        ("SMTP", "login, STARTTLS or certificate refused", "configuration", "smtp_configuration")
    )
    rows.append(("Twilio callback", "undelivered / failed", "by ErrorCode", "as the error"))
    return [(*row, describe(row[3]) if row[3] in OUTCOME_DESCRIPTIONS else "") for row in rows]


def _ses_rows() -> list[Row]:
    rows: list[Row] = [
        ("SES API", code, cls.value, ours) for code, (cls, ours) in SES_ERRORS.items()
    ]
    rows.append(("SES API", "any other error", OutcomeClass.UNKNOWN.value, OutcomeCode.SES_UNKNOWN))
    rows.append(
        (
            "SES / SMTP / Twilio / AWS",
            "connection error or timeout",
            "temporary",
            OutcomeCode.CONNECTION_ERROR,
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
    rows.append(("SES event", "Delivery", OutcomeClass.DELIVERED.value, OutcomeCode.DELIVERED))
    return rows


def _twilio_rows() -> list[Row]:
    rows: list[Row] = [
        ("Twilio", f"error {code}", cls.value, ours) for code, (cls, ours) in TWILIO_ERRORS.items()
    ]
    rows.append(
        ("Twilio", "any other error code", OutcomeClass.UNKNOWN.value, OutcomeCode.TWILIO_UNKNOWN)
    )
    rows += [
        ("Twilio", f"HTTP {status}, unlisted code", cls.value, ours)
        for status, (cls, ours) in TWILIO_HTTP_STATUSES.items()
    ]
    rows.append(
        ("Twilio callback", "delivered", OutcomeClass.DELIVERED.value, OutcomeCode.DELIVERED)
    )
    return rows


def _aws_sms_rows() -> list[Row]:
    rows: list[Row] = [
        ("AWS SMS", f"Reason {reason}", cls.value, ours)
        for reason, (cls, ours) in AWS_SMS_REASONS.items()
    ]
    rows += [("AWS SMS", code, cls.value, ours) for code, (cls, ours) in AWS_SMS_ERRORS.items()]
    rows.append(
        ("AWS SMS", "any other error", OutcomeClass.UNKNOWN.value, OutcomeCode.AWS_SMS_UNKNOWN)
    )
    return rows


def _smtp_rows() -> list[Row]:
    rows: list[Row] = [
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
    return rows


def outcome_table_markdown() -> str:
    """The table as Markdown, exactly as the README carries it."""
    lines = [
        "| provider | answer | outcome | code | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {' | '.join(row)} |" for row in outcome_table()]
    return "\n".join(lines) + "\n"
