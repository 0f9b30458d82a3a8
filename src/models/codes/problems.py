"""The codes of the HTTP API's errors (RFC 9457 problem details) and of a link's token."""

from __future__ import annotations

from enum import StrEnum


class ProblemCode(StrEnum):
    """The codes of the API's errors; a client branches on these, never on the words."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    INVALID_TRANSITION = "invalid_transition"  # the user's status does not allow the step
    INVALID_TOKEN = "invalid_token"  # a link's token; ``problem`` says why (used, expired...)
    SIGN_IN_REFUSED = "sign_in_refused"  # ``problem`` is the SignInRefusal (locked_out...)
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    EVENT_ID_REUSED = "event_id_reused"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_REQUEST = "invalid_request"  # the request does not match the schema
    INVALID_INPUT = "invalid_input"  # it matches, but breaks a rule of the pipelines
    RATE_LIMITED = "rate_limited"
    UPSTREAM_FAILED = "upstream_failed"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


class TokenProblem(StrEnum):
    """Why an invitation token cannot be used."""

    UNKNOWN = "unknown"
    SUPERSEDED = "superseded"
    USED = "used"
    EXPIRED = "expired"
    NOT_SENT = "not_sent"


class AcceptanceProblem(StrEnum):
    """Why an accept or confirm link cannot be used (the page the recipient sees)."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    NOT_SENT = "not_sent"
    WRONG_KIND = "wrong_kind"


class PasswordProblem(StrEnum):
    """Why a new portal user's password was refused."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BLANK = "blank"
    TOO_WEAK = "too_weak"
    MISMATCH = "mismatch"
