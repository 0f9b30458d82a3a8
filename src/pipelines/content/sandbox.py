"""The Jinja2 sandbox every email template renders in: no unsafe access, bounded renders.

Stricter than Jinja's ``ImmutableSandboxedEnvironment``: reaching for internals raises
``SecurityError`` instead of rendering as empty, and every render is bounded in time and
size (see ``render_limits``). The deadline is checked at each loop iteration, call, filter
and output; each value a template builds is checked against the size cap (before it is
built, for the operations whose result can outgrow their input: ``*``, ``**``, ``%``,
``str.format``, ``center``, ``indent``, ``join``, ...); and all a part writes, into every
buffer (macros, ``set`` blocks, call blocks) as well as the output, is counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .render_limits import (
    MAX_OUTPUT,
    MAX_SLOW_INPUT,
    MAX_VALUE,
    _current,
    budget,
    check_int_bits,
    check_planned,
    check_printf,
    check_str_format,
    check_time,
    check_value,
    size_of,
    too_large,
    wrote,
)

_MAX_EXPONENT = 100
_MAX_JSON_INDENT = 8
_MAX_ROUND_DIGITS = 100


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, plus the hooks that keep a render within its bounds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._repeating = 0  # inside a loop, a macro or a call block: text may repeat

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        # Jinja allows no node types of our own: each loop's iterable becomes a call.
        for loop in node.find_all(nodes.For):
            if not _is_checked(loop.iter):
                checker = nodes.EnvironmentAttribute("checked_iter", lineno=loop.lineno)
                loop.iter = nodes.Call(checker, [loop.iter], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._repeating += 1
        super().visit_For(node, frame)
        self._repeating -= 1

    def visit_Macro(self, node: nodes.Macro, frame: Frame) -> None:
        self._repeating += 1
        super().visit_Macro(node, frame)
        self._repeating -= 1

    def visit_CallBlock(self, node: nodes.CallBlock, frame: Frame) -> None:
        self._repeating += 1
        super().visit_CallBlock(node, frame)
        self._repeating -= 1

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        # Text outside loops and macros is written once: the source bounds it.
        if self._repeating:
            size = sum(
                len(child.data) for child in node.nodes if isinstance(child, nodes.TemplateData)
            )
            if size:
                self.writeline(f"environment.wrote({size})")
        super().visit_Output(node, frame)

    def write_commons(self) -> None:
        super().write_commons()
        self.writeline("output = environment.output")  # a local: read for every value written

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_pre(node, frame, finalize)
        self.write("output(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write(")")
        super()._output_child_post(node, frame, finalize)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_checked(")
        super().visit_Concat(node, frame)
        self.write(")")


def _is_checked(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.EnvironmentAttribute)
        and node.node.name == "checked_iter"
    )


class _BoundedTemplate(Template):
    """A template whose ``render`` is bounded; a runaway build is ``TemplateTooLarge``."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if _current.get() is None:  # else: a part of a message, within the message's budget
            with budget():
                return self.render(*args, **kwargs)
        try:
            text = super().render(*args, **kwargs)
        except (MemoryError, OverflowError, RecursionError) as exc:
            raise too_large(f"{type(exc).__name__}: {exc}"[:200]) from None
        if len(text) > MAX_VALUE:
            raise too_large(f"one part is more than {MAX_VALUE:,} characters")
        return text


class Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, stricter (unsafe access raises) and bounded in time and size."""

    code_generator_class = _BoundedCodeGenerator
    template_class = _BoundedTemplate
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = _checked_lipsum(self.globals["lipsum"])
        # A plain function in the instance, not a method: the generated code calls it for
        # every value it writes, and skipping the method binding is measurably cheaper.
        self.output = _output

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:  # type: ignore[override]
        # The stock sandbox returns an Undefined that would render as empty with our lenient
        # undefined type; a template probing internals must fail loudly instead.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_time()
        _check_binop(operator, left, right)
        return check_value(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) and (guard := _STR_METHODS.get(__obj.__name__)):
            args = guard(owner, args, kwargs)
        return check_value(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            if is_map and len(args) == 1 and isinstance(args[0], Mapping):
                check_str_format(template, (), args[0])
            else:
                check_str_format(template, args, kwargs)
            return wrapped(*args, **kwargs)

        return checked

    def checked_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, checking the deadline before each item."""
        for item in iterable:
            check_time()
            yield item

    def wrote(self, size: int) -> None:
        """Text of ``size`` characters written inside a loop or macro: counted."""
        wrote(size)

    def concat_checked(self, text: str) -> str:
        """The result of ``~``: checked."""
        return check_value(text)


def _output(value: Any) -> Any:
    """A value about to be written: counted (before turning it into text)."""
    current = _current.get()
    if current is not None:
        current.written += len(value) if type(value) is str else size_of(value)
        if current.written > MAX_OUTPUT:
            wrote(0)  # raises TemplateTooLarge
    return value


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """TemplateTooLarge before an operator builds a giant string, list or number."""
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(count, int) and not isinstance(sequence, int | float):
                check_planned(size_of(sequence) * max(count, 0), "the repeated value")
        if _is_int(left) and _is_int(right):
            check_int_bits(left.bit_length() + right.bit_length())
    elif operator == "**" and _is_int(right):
        if abs(right) > _MAX_EXPONENT:
            raise too_large(f"the exponent {right} is over {_MAX_EXPONENT}")
        if _is_int(left):
            check_int_bits(left.bit_length() * max(right, 0))
    elif operator == "%" and isinstance(left, str):
        check_printf(left, right)
    elif operator == "+" and not isinstance(left, int | float):
        check_planned(size_of(left) + size_of(right), "the sum")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- str methods whose result can outgrow the string ---------------------------------------

_Args = tuple[Any, ...]


def _width_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    for value in (*args, *kwargs.values()):
        if _is_int(value):
            check_planned(value, "the padded text")
    return args


def _expandtabs_guard(owner: Any, args: _Args, kwargs: Mapping[str, Any]) -> _Args:
    size = args[0] if args else kwargs.get("tabsize", 8)
    if _is_int(size):
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


_STR_METHODS: dict[str, Callable[[Any, _Args, Mapping[str, Any]], _Args]] = {
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
    if _is_int(count) and count >= 0:
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


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
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
    if _is_int(width):
        check_planned(width, "the centred text")


def _indent_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    text = str(value) if isinstance(value, str) else ""
    per_line = width if _is_int(width) else size_of(width)
    check_planned(len(text) + (text.count("\n") + 1) * max(per_line, 0), "the indented text")


def _wordwrap_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    text = value if isinstance(value, str) else ""
    _check_slow_input(text, "wordwrap")
    width = _arg(args, kwargs, 0, "width", 79)
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    lines = len(text) // max(width, 1) + text.count("\n") + 1 if _is_int(width) else 1
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
    if _is_int(count):
        check_planned(count, "a batch")


def _slice_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    count = _arg(args, kwargs, 0, "slices", 1)
    if _is_int(count):
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
        and (size_of(indent) if not _is_int(indent) else indent) > _MAX_JSON_INDENT
    ):
        raise too_large(f"a JSON indent over {_MAX_JSON_INDENT}")


def _round_guard(value: Any, args: _Args, kwargs: Mapping[str, Any]) -> None:
    precision = _arg(args, kwargs, 0, "precision", 0)
    if _is_int(precision) and abs(precision) > _MAX_ROUND_DIGITS:
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


def _checked_lipsum(lipsum: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(lipsum)
    def checked(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if _is_int(n) and _is_int(max):
            check_planned(n * max * 12, "the placeholder text")
        return lipsum(n, html, min, max)

    return checked
