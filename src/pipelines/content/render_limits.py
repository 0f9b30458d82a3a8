"""Bounds on rendering one message: a time budget, and a size cap on what a template builds.

A render runs under a :func:`budget` (one deadline for all parts of a message). The checks
raise :class:`TemplateTooSlow` once the deadline has passed, and :class:`TemplateTooLarge`
*before* building a value or an output over its cap, so a hostile template never gets to
allocate the giant it asks for. Each error carries its failure code from the one registry.

Example::

    with budget():
        check_time()                       # TemplateTooSlow past the deadline
        check_value("x" * 10)              # TemplateTooLarge over MAX_VALUE characters
"""

from __future__ import annotations

import re
from _string import formatter_field_name_split  # type: ignore[import-not-found]
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from string import Formatter
from time import monotonic
from typing import Any

from jinja2.utils import Namespace

from portalflow.models import SendFailureCode
from portalflow.pipelines.errors import InvalidInput

TIME_BUDGET = 0.5  # seconds to render one message, all its parts together
MAX_VALUE = 1_000_000  # characters (or items) of any one value a template builds
MAX_OUTPUT = 2_000_000  # characters one message may write, all parts and buffers counted
MAX_INT_BITS = 100_000  # about 30,000 digits; Python prints no more than 4,300 anyway
MAX_SMS_LENGTH = 2_000  # characters of an SMS template and of a rendered SMS
# Inputs over this size are refused by filters whose cost grows faster than their input.
MAX_SLOW_INPUT = 20_000

_NAMESPACE_ATTRS = "_Namespace__attrs"  # jinja2.utils.Namespace keeps its values here


class TemplateLimitExceeded(InvalidInput):
    """A render went past a bound; ``code`` is its failure code."""

    code: SendFailureCode


class TemplateTooSlow(TemplateLimitExceeded):
    code = SendFailureCode.TEMPLATE_TOO_SLOW


class TemplateTooLarge(TemplateLimitExceeded):
    code = SendFailureCode.TEMPLATE_TOO_LARGE


@dataclass(slots=True)
class Budget:
    """The deadline of the message being rendered, and what it wrote so far (every buffer)."""

    deadline: float
    written: int = 0


_current: ContextVar[Budget | None] = ContextVar("portalflow_render_budget", default=None)


class budget:
    """One deadline and one write count for everything rendered inside."""

    __slots__ = ("_token", "seconds")

    def __init__(self, seconds: float = TIME_BUDGET) -> None:
        self.seconds = seconds

    def __enter__(self) -> Budget:
        current = _current.get()
        if current is None:
            current = Budget(monotonic() + self.seconds)
        self._token = _current.set(current)  # an enclosing budget goes on counting
        return current

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


def check_time() -> None:
    """TemplateTooSlow once the current render's deadline has passed."""
    current = _current.get()
    if current is not None and monotonic() > current.deadline:
        raise TemplateTooSlow(f"the template took longer than {TIME_BUDGET:g} s to render")


def wrote(size: int) -> None:
    """Count ``size`` characters written by the current message; TemplateTooLarge over the cap."""
    current = _current.get()
    if current is None:
        return
    # No clock here: loops, calls and filters check the deadline, and text outside them
    # is bounded by the source.
    current.written += size
    if current.written > MAX_OUTPUT:
        raise too_large(f"it writes more than {MAX_OUTPUT:,} characters")


def too_large(why: str) -> TemplateTooLarge:
    return TemplateTooLarge(f"the template builds too large a message: {why}")


def size_of(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters ``value`` takes as text; stops counting past ``limit``."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 1  # a little over its decimal digits
    if isinstance(value, Mapping):
        items: Any = (part for pair in value.items() for part in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    elif isinstance(value, Namespace):
        return size_of(getattr(value, _NAMESPACE_ATTRS), limit) + 12
    else:
        return 24  # a float, a date, an undefined: short as text
    if len(value) * 2 > limit:  # each item takes two characters at least (", ")
        return len(value) * 2
    total = 2
    for item in items:
        total += size_of(item, limit - total) + 2
        if total > limit:
            break
    return total


def check_value(value: Any) -> Any:
    """``value`` itself, unless it is over MAX_VALUE characters (TemplateTooLarge)."""
    if not isinstance(value, str) and size_of(value) > MAX_VALUE:
        raise too_large(f"a value of more than {MAX_VALUE:,} characters or items")
    if isinstance(value, str) and len(value) > MAX_VALUE:
        raise too_large(f"a value of more than {MAX_VALUE:,} characters")
    return value


def check_planned(size: int, what: str) -> None:
    """TemplateTooLarge before building ``what`` when it would be ``size`` characters."""
    if size > MAX_VALUE:
        raise too_large(f"{what} would be {size:,} characters (the cap is {MAX_VALUE:,})")


def check_int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise too_large(f"a number of more than {MAX_INT_BITS // 3:,} digits")


# --- printf-style and str.format formatting ----------------------------------------------

_PRINTF = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?"
    r"[hlL]?(?P<type>.?)"
)
_NUMBER = re.compile(r"\d+")


def check_printf(template: str, values: Any) -> None:
    """TemplateTooLarge before ``template % values`` if the result would be over the cap."""
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    size = len(template)
    for spec in _PRINTF.finditer(template):
        if spec.group("type") == "%":
            continue
        piece = 0
        for name in ("width", "precision"):
            field = spec.group(name)
            if field == "*":
                star = positional.pop(0) if positional else 0
                piece = max(piece, star if isinstance(star, int) else 0)
            elif field:
                piece = max(piece, _count(field))
        if spec.group("key") is not None and mapping is not None:
            value = mapping.get(spec.group("key"))
        else:
            value = positional.pop(0) if positional else None
        size += max(piece, size_of(value))
        check_planned(size, "the formatted text")


def check_format_spec(spec: str) -> None:
    """TemplateTooLarge for a ``str.format`` spec asking for a width or precision over the cap."""
    for number in _NUMBER.findall(spec):
        check_planned(_count(number), "a formatted field")


def _count(digits: str) -> int:
    # int() refuses over 4,300 digits; anything over nine is over every cap anyway.
    return MAX_VALUE + 1 if len(digits) > 9 else int(digits)


def check_str_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """TemplateTooLarge before ``template.format(*args, **kwargs)`` would be over the cap."""
    size, auto = len(template), 0
    for _, field, spec, _ in Formatter().parse(template):
        if field is None:
            continue
        if spec and "{" in spec:
            raise too_large("a format spec taken from a value (nested braces) is not allowed")
        check_format_spec(spec or "")
        first, _ = formatter_field_name_split(field) if field else (auto, None)
        if field == "":
            auto += 1
        if isinstance(first, int):
            value = args[first] if first < len(args) else None
        else:
            value = kwargs.get(first)
        widest = max((_count(number) for number in _NUMBER.findall(spec or "")), default=0)
        size += max(widest, size_of(value))
        check_planned(size, "the formatted text")
