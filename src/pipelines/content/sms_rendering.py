"""Rendering an SMS at send time: merge fields filled, each value checked against its DLT variable.

The rendered text must pass the operator's DLT scrubbing: the template matches its DLT
template (:func:`.sms_text.find_mismatch`) and every value fits its variable's type and
length cap; else :class:`DltMismatch` says which variable and why.

Example::

    checked = render_checked(
        "Your code is {{ code }}. - Zylker",
        "Your code is {#numeric#}. - Zylker",
        {"code": "493817"},
        whitespace_tolerant=False,
        limits={"var": 30},
    )
    assert (checked.text, checked.segments) == ("Your code is 493817. - Zylker", 1)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from portalflow.models import SmsEncoding
from portalflow.pipelines.errors import InvalidInput

from .sms_text import (
    DltVariable,
    check_length,
    find_mismatch,
    parse_body,
    parse_dlt_content,
    sms_segments,
)


class DltMismatch(Exception):
    """The rendered SMS would not pass the operator's DLT scrubbing; ``detail`` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class CheckedSms:
    text: str
    encoding: SmsEncoding
    segments: int


DEFAULT_VARIABLE_LIMIT = 30

_DIGITS = re.compile(r"[0-9]+")
_URL_VALUE = re.compile(
    r"https?://[^\s/?#]+(?:[/?#]\S*)?"
    r"|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?::[0-9]+)?(?:[/?#]\S*)?",
    re.IGNORECASE,
)
_CALLBACK_NUMBER = re.compile(r"\+?[0-9]{8,15}")
_EMAIL_VALUE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_ALPHANUMERIC_EXTRA = frozenset(" .,-'&/")


def render_checked(
    body: str,
    dlt_content: str,
    values: Mapping[str, Any],
    *,
    whitespace_tolerant: bool,
    limits: Mapping[str, int],
) -> CheckedSms:
    """Fill the merge fields and prove the text fits its DLT template; else DltMismatch.

    TemplateTooLarge when the template or the text is over ``MAX_SMS_LENGTH`` characters.
    """
    check_length(body, "the SMS template")
    try:
        parsed = parse_body(body)
    except InvalidInput as exc:
        raise DltMismatch(f"the SMS template cannot be rendered: {exc}") from None
    try:
        dlt = parse_dlt_content(dlt_content)
    except InvalidInput as exc:
        raise DltMismatch(f"the DLT template cannot be read: {exc}") from None
    mismatch = find_mismatch(parsed, dlt, whitespace_tolerant=whitespace_tolerant)
    if mismatch is not None:
        raise DltMismatch(f"the SMS template does not match its DLT template: {mismatch}")

    pieces = [parsed.literals[0]]
    for number, (field, variable) in enumerate(zip(parsed.fields, dlt.variables, strict=True), 1):
        value = _lookup(values, field.name)
        problem = variable_problem(value, variable, limits)
        if problem is not None:
            raise DltMismatch(
                f"variable {number} ({variable.source}, from {field.source}) {problem}"
            )
        pieces.extend((value, parsed.literals[number]))
    text = "".join(pieces)
    check_length(text, "the rendered SMS")
    encoding, segments = sms_segments(text)
    return CheckedSms(text, encoding, segments)


def variable_problem(value: str, variable: DltVariable, limits: Mapping[str, int]) -> str | None:
    """What is wrong with ``value`` in ``variable`` (a phrase), or None when it fits."""
    cap = limits.get(variable.type, limits.get("var", DEFAULT_VARIABLE_LIMIT))
    if len(value) > cap:
        return f"is {len(value)} characters; the cap is {cap}"
    if "\n" in value or "\r" in value:
        return "has a line break; a DLT variable holds one line"
    match variable.type:
        case "numeric":
            if not value:
                return "is empty; it must be digits only"
            if not _DIGITS.fullmatch(value):
                return _first_bad(value, "digits only", lambda char: "0" <= char <= "9")
        case "alphanumeric":
            return _first_bad(value, "letters, digits, spaces and . , - ' & /", _alphanumeric)
        case "url" | "urlott":
            if not _URL_VALUE.fullmatch(value):
                return f"must be an http(s) URL or a domain/path without spaces, not {value!r}"
        case "cbn":
            if not _CALLBACK_NUMBER.fullmatch(value):
                return "must be a phone number: an optional + and 8 to 15 digits"
        case "email":
            if not _EMAIL_VALUE.fullmatch(value):
                return "must be an email address"
    return None


def _alphanumeric(char: str) -> bool:
    # Letters of any script carry combining marks (Devanagari vowel signs are category M).
    return char in _ALPHANUMERIC_EXTRA or unicodedata.category(char)[0] in "LMN"


def _first_bad(value: str, allowed: str, ok: Callable[[str], bool]) -> str | None:
    for position, char in enumerate(value, start=1):
        if not ok(char):
            return f"must be {allowed}; character {position} is {char!r}"
    return None


def _lookup(values: Mapping[str, Any], name: str) -> str:
    """The value of a dotted merge field as text; missing or None renders as empty."""
    current: Any = values
    for part in name.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None or isinstance(current, Mapping):
        return ""
    if isinstance(current, float) and current.is_integer():
        return str(int(current))
    return str(current)
