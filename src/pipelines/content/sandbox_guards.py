"""Guards on the str methods and filters whose result can outgrow their input.

Each guard checks, before the call, that the result will fit the render's size cap (see
``render_limits``): the str methods ``center``, ``ljust``, ``rjust``, ``zfill``,
``expandtabs``, ``replace``, ``join`` and ``translate``; the filters ``center``,
``indent``, ``wordwrap``, ``format``, ``join``, ``replace``, ``batch``, ``slice``, ``sum``,
``tojson`` and ``round``, and the input of the slow ones (``striptags``, ``urlize``); and
``lipsum``. The sandbox (``sandbox``) wraps every str method call and filter with them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .render_limits import (
    MAX_SLOW_INPUT,
    MAX_VALUE,
    check_planned,
    check_printf,
    check_time,
    check_value,
    size_of,
    too_large,
)

_MAX_JSON_INDENT = 8
_MAX_ROUND_DIGITS = 100


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_Args = tuple[Any, ...]


def _width_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    for value in (*args, *kwargs.values()):
        if is_int(value):
            check_planned(value, "the padded text")
    return args


def _expandtabs_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    size = args[0] if args else kwargs.get("tabsize", 8)
    if is_int(size):
        check_planned(
            len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * size, "the text"
        )
    return args


def _replace_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    if len(args) >= 2:
        check_planned(
            _replaced_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1), "the text"
        )
    return args


def _join_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    if len(args) != 1:
        return args
    items = list(checked_items(args[0]))
    size = len(owner) * max(len(items) - 1, 0)
    for item in items:
        size += size_of(item)
        check_planned(size, "the joined text")
    return (items,)


def _translate_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    table = args[0] if args else None
    if isinstance(table, Mapping):
        longest = max((size_of(value) for value in table.values()), default=1)
        check_planned(len(owner) * max(longest, 1), "the translated text")
    return args


STR_METHOD_GUARDS: dict[str, Callable[[Any, _Args, Mapping[str, Any]], _Args]] = {
    "center": _width_guard,
    "ljust": _width_guard,
    "rjust": _width_guard,
    "zfill": _width_guard,
    "expandtabs": _expandtabs_guard,
    "replace": _replace_guard,
    "join": _join_guard,
    "translate": _translate_guard,
}


def _replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(text, str | bytes) or not isinstance(old, type(text)):
        return 0
    found = text.count(old) if old else len(text) + 1
    if is_int(count) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(size_of(new) - len(old), 0)


def checked_items(iterable: Any) -> Iterator[Any]:
    """The items of ``iterable``, counting them against the cap and checking the deadline."""
    for number, item in enumerate(iterable, 1):
        if number > MAX_VALUE:
            raise too_large(f"more than {MAX_VALUE:,} items")
        if number % 1024 == 0:
            check_time()
        yield item


# --- filters ---------------------------------------------------------------------------------


def bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` checked: the deadline first, its arguments if it can blow up, its result."""
    guard = _FILTER_GUARDS.get(name)

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if guard is not None:
            at = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
            value = guard(args[at], args[at + 1 :], kwargs)  # None: the value as it is
            if value is not None and value is not args[at]:
                args = (*args[:at], value, *args[at + 1 :])
        return check_value(function(*args, **kwargs))

    return bounded


def _arg(args: _Args, kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _center_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 80)
    if is_int(width):
        check_planned(width, "the centred text")


def _indent_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    text = str(value) if isinstance(value, str) else ""
    per_line = width if is_int(width) else size_of(width)
    check_planned(len(text) + (text.count("\n") + 1) * max(per_line, 0), "the indented text")


def _wordwrap_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    text = value if isinstance(value, str) else ""
    _check_slow_input(text, "wordwrap")
    width = _arg(args, kwargs, 0, "width", 79)
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    lines = len(text) // max(width, 1) + text.count("\n") + 1 if is_int(width) else 1
    check_planned(len(text) + lines * size_of(wrap or "\n"), "the wrapped text")


def _format_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    if isinstance(value, str):
        check_printf(value, kwargs or args)


def _join_filter_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> Any | None:
    separator = _arg(args, kwargs, 0, "d", "")
    if not isinstance(value, str | list | tuple | Mapping):
        value = list(checked_items(value))  # an iterator: read it once, counting
    size = size_of(separator) * max(len(value) - 1, 0)
    for item in value:
        size += size_of(item)
        check_planned(size, "the joined text")
    return value


def _replace_filter_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
    count = _arg(args, kwargs, 2, "count", None)
    check_planned(
        _replaced_size(
            str(value) if isinstance(value, str) else value,
            old,
            new,
            -1 if count is None else count,
        ),
        "the text",
    )


def _batch_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    count = _arg(args, kwargs, 0, "linecount", 1)
    if is_int(count):
        check_planned(count, "a batch")


def _slice_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    count = _arg(args, kwargs, 0, "slices", 1)
    if is_int(count):
        check_planned(count * 4, "the slices")


def _sum_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    start = _arg(args, kwargs, 1, "start", 0)
    if not isinstance(start, int | float) and isinstance(value, list | tuple):
        # Adding sequences copies the total so far each time: refuse all but small sums.
        check_planned(size_of(start) + len(value) * size_of(value), "the sum")


def _tojson_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    indent = _arg(args, kwargs, 0, "indent", None)
    if (
        indent is not None
        and (size_of(indent) if not is_int(indent) else indent) > _MAX_JSON_INDENT
    ):
        raise too_large(f"a JSON indent over {_MAX_JSON_INDENT}")


def _round_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    precision = _arg(args, kwargs, 0, "precision", 0)
    if is_int(precision) and abs(precision) > _MAX_ROUND_DIGITS:
        raise too_large(f"rounding to more than {_MAX_ROUND_DIGITS} digits")


def _slow_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    _check_slow_input(value, "this filter")


def _check_slow_input(value: Any, what: str) -> None:
    if isinstance(value, str) and len(value) > MAX_SLOW_INPUT:
        raise too_large(f"{what} takes at most {MAX_SLOW_INPUT:,} characters")


_FILTER_GUARDS: dict[str, Callable[[Any, _Args, Mapping[str, Any]], Any | None]] = {
    "center": _center_guard,
    "indent": _indent_guard,
    "wordwrap": _wordwrap_guard,
    "format": _format_guard,
    "join": _join_filter_guard,
    "replace": _replace_filter_guard,
    "batch": _batch_guard,
    "slice": _slice_guard,
    "sum": _sum_guard,
    "tojson": _tojson_guard,
    "round": _round_guard,
    # Their cost grows faster than their input (markupsafe's striptags, urlize's regexes).
    "striptags": _slow_guard,
    "urlize": _slow_guard,
}


def checked_lipsum(lipsum: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(lipsum)
    def checked(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if is_int(n) and is_int(max):
            check_planned(n * max * 12, "the placeholder text")
        return lipsum(n, html, min, max)

    return checked
