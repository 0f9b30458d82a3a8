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
from .sandbox_guards import STR_METHOD_GUARDS, bounded_filter, checked_lipsum, is_int

_MAX_EXPONENT = 100


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
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.globals["lipsum"] = checked_lipsum(self.globals["lipsum"])
        # A plain function in the instance, not a method: the generated code calls it for
        # every value it writes, and skipping the method binding is measurably cheaper.
        self.output = _output

    def make_globals(self, d: Mapping[str, Any] | None) -> dict[str, Any]:
        # Jinja's ChainMap follows later changes to the environment's globals, which ours
        # never make; a plain dict saves rebuilding the chain's keys on every render.
        return {**self.globals, **(d or {})}

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
        if isinstance(owner, str | bytes) and (guard := STR_METHOD_GUARDS.get(__obj.__name__)):
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
        if is_int(left) and is_int(right):
            check_int_bits(left.bit_length() + right.bit_length())
    elif operator == "**" and is_int(right):
        if abs(right) > _MAX_EXPONENT:
            raise too_large(f"the exponent {right} is over {_MAX_EXPONENT}")
        if is_int(left):
            check_int_bits(left.bit_length() * max(right, 0))
    elif operator == "%" and isinstance(left, str):
        check_printf(left, right)
    elif operator == "+" and not isinstance(left, int | float):
        check_planned(size_of(left) + size_of(right), "the sum")
