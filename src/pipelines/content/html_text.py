"""What a reader sees of an email's HTML: its plain-text part, and its visible links.

Hidden content (``display:none``, zero-size boxes and fonts, ``<head>``, scripts ...) is
left out of both, so a template cannot hide its portal link, nor show text only to the
plain-text reader. Parsing checks the render's time budget (``render_limits``) as it goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html.parser import HTMLParser

from .render_limits import check_time

_SKIPPED = frozenset({"head", "script", "style", "template", "title"})
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol"}
)
_BLOCKS = frozenset(
    {"div", "tr", "hr", "section", "article", "header", "footer", "main", "nav", "dl", "dt", "dd"}
)
# Elements that never have content or an end tag.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
# An open element a start tag of the key closes implicitly (enough for email markup).
_CLOSED_BY = {"p": {"p"}, "li": {"li"}, "tr": {"tr", "td", "th"}, "td": {"td", "th"}}
_CLOSED_BY["th"] = _CLOSED_BY["td"]
# Inline styles that hide an element and all it holds (email clients honour these).
_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)"
    r"|mso-hide\s*:\s*all|opacity\s*:\s*0*\.?0+\s*(?:;|$|!))",
    re.IGNORECASE,
)
_ZERO = r"\s*:\s*0*\.?0+\s*(?:px|pt|em|rem|%)?\s*(?:;|$|!)"
_ZERO_BOX = re.compile(rf"(?:^|;)\s*(?:max-)?(?:height|width){_ZERO}", re.IGNORECASE)
_OVERFLOW_HIDDEN = re.compile(r"(?:^|;)\s*overflow\s*:\s*hidden", re.IGNORECASE)
_FONT_SIZE = re.compile(r"(?:^|;)\s*font-size\s*:\s*([^;!]*)", re.IGNORECASE)
_ZERO_SIZE = re.compile(r"0*\.?0+\s*(?:px|pt|em|rem|%)?")
_WHITESPACE = re.compile(r"[ \t\n\r\f]+")  # HTML whitespace: not \xa0
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def hides(tag: str, attrs: Mapping[str, str | None]) -> bool:
    """Whether an element hides itself and everything in it from the reader.

    The ``hidden`` attribute, a hidden input, the non-content elements (head, script,
    style, template, title), and inline ``display:none``, ``visibility:hidden``,
    ``mso-hide:all``, ``opacity:0``, or a zero height or width with ``overflow:hidden``.
    Comments are never content. A zero font size is :func:`font_size_zero`.
    """
    if tag in _SKIPPED or "hidden" in attrs:
        return True
    if tag == "input" and (attrs.get("type") or "").lower() == "hidden":
        return True
    style = (attrs.get("style") or "").replace("\n", " ")
    if _HIDING_STYLE.search(style):
        return True
    return bool(_ZERO_BOX.search(style) and _OVERFLOW_HIDDEN.search(style))


def font_size_zero(tag: str, attrs: Mapping[str, str | None]) -> bool | None:
    """True for a zero font size, False for another one, None when the element sets none.

    A descendant with its own font size is visible again (a common layout trick sets 0 on a
    table cell to drop the whitespace between the blocks it holds).
    """
    if tag == "font" and (size := (attrs.get("size") or "").strip()):
        return size in ("0", "-0", "+0")
    found = _FONT_SIZE.findall((attrs.get("style") or "").replace("\n", " "))
    if not found:
        return None
    return _ZERO_SIZE.fullmatch(found[-1].strip()) is not None


class _VisibilityParser(HTMLParser):
    """An HTML parser that knows whether the current position is visible to the reader.

    Each callback checks the render's deadline: some inputs make ``html.parser`` quadratic.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # (tag, hidden with all it holds, zero font size in effect) per open element.
        self._open: list[tuple[str, bool, bool]] = []

    @property
    def hidden(self) -> bool:
        return bool(self._open) and (self._open[-1][1] or self._open[-1][2])

    def _state(self, tag: str, attrs: Mapping[str, str | None]) -> tuple[str, bool, bool]:
        parent_hides = bool(self._open) and self._open[-1][1]
        parent_zero = bool(self._open) and self._open[-1][2]
        zero = font_size_zero(tag, attrs)
        return (tag, parent_hides or hides(tag, attrs), parent_zero if zero is None else zero)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        check_time()
        values = dict(attrs)
        closes = _CLOSED_BY.get(tag, ())
        while self._open and self._open[-1][0] in closes:
            self._open.pop()
        state = self._state(tag, values)
        hidden = state[1] or state[2]
        if tag not in _VOID:
            self._open.append(state)
        self.start(tag, values, hidden)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        check_time()
        values = dict(attrs)
        _, hides_all, zero = self._state(tag, values)
        self.start(tag, values, hides_all or zero)
        if tag not in _VOID:
            self.end(tag, hides_all or zero)

    def handle_endtag(self, tag: str) -> None:
        check_time()
        if not any(state[0] == tag for state in self._open):
            return  # a stray end tag closes nothing
        hidden = False
        while self._open:
            open_tag, hides_all, zero = self._open.pop()
            hidden = hides_all or zero
            if open_tag == tag:
                break
        self.end(tag, hidden)

    def handle_data(self, data: str) -> None:
        check_time()

    def handle_comment(self, data: str) -> None:
        check_time()

    def handle_decl(self, decl: str) -> None:
        check_time()

    def handle_pi(self, data: str) -> None:
        check_time()

    def unknown_decl(self, data: str) -> None:
        check_time()

    def start(self, tag: str, attrs: dict[str, str | None], hidden: bool) -> None:
        """A start tag; ``hidden`` says whether the element is hidden."""

    def end(self, tag: str, hidden: bool) -> None:
        """The end of an element; ``hidden`` says whether it was hidden."""


class _TextExtractor(_VisibilityParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[tuple[str | None, int]] = []

    def start(self, tag: str, attrs: dict[str, str | None], hidden: bool) -> None:
        if hidden:
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.links.append((attrs.get("href"), len(self.parts)))
        elif tag == "img" and (alt := attrs.get("alt")):
            self.parts.append(alt)

    def end(self, tag: str, hidden: bool) -> None:
        if hidden:
            return
        if tag in _PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            if not href or href.startswith("#"):
                return
            label = "".join(self.parts[start:]).strip()
            if not label:
                self.parts.append(href)
            elif label != href:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        check_time()
        if not self.hidden:
            self.parts.append(_WHITESPACE.sub(" ", data))


class _LinkCollector(_VisibilityParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def start(self, tag: str, attrs: dict[str, str | None], hidden: bool) -> None:
        href = attrs.get("href")
        if tag == "a" and href and not hidden:
            self.links.append(href.strip())


def visible_links(html: str) -> list[str]:
    """The ``href`` of every ``<a>`` a reader can see: none in comments or hidden elements."""
    parser = _LinkCollector()
    parser.feed(html)
    parser.close()
    return parser.links


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML email: links as "text (url)", blocks as lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.parts))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
