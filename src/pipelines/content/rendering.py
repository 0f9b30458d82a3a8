"""Rendering invitation emails: shipped defaults per language, or an org's saved template.

Templates run in one hardened Jinja2 sandbox (``sandbox``), bounded in time and size
(``render_limits``): one budget for all parts of a message, the plain text made from the
HTML included. Defaults are compiled once per process; a
custom template is compiled per load (a caller loads once per chunk, renders many times).
A merge field with no value renders as empty; reaching for anything the sandbox forbids
raises ``SecurityError`` at once instead of rendering as empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import ChainableUndefined, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    EMAIL_TEMPLATE_KINDS,
    EmailKind,
    EmailTemplate,
    Org,
    Portal,
    PortalUserType,
)
from portalflow.pipelines.errors import InvalidInput

from .render_limits import budget, check_time
from .sandbox import Sandbox

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "ja", "hi")
FALLBACK_LANGUAGE = "en"
LINK_VARIABLE: dict[EmailKind, str] = {
    EmailKind.ACCEPT_INVITATION: "invite_url",
    EmailKind.CONFIRM_EMAIL: "confirm_url",
    EmailKind.RESET_PASSWORD: "reset_url",
}
# Top-level names every template may use, besides its kind's link variable.
CONTEXT_NAMES: frozenset[str] = frozenset(
    {"record", "portal", "org", "user_type", "inviter", "link", "expires_at"}
)

# A language tag such as "fr", "pt-BR" or "zh_Hant": only the primary subtag is used.
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def _environment(*, autoescape: bool) -> Sandbox:
    return Sandbox(autoescape=autoescape, undefined=ChainableUndefined, auto_reload=False)


# The subject and the plain-text part are not HTML, so they must not be escaped.
HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


class CompiledEmailTemplate:
    """Subject/html/text Jinja2 templates compiled once, rendered many times."""

    __slots__ = ("_html", "_subject", "_text", "is_custom", "kind", "language")

    def __init__(
        self,
        *,
        kind: EmailKind,
        language: str,
        is_custom: bool,
        subject: str,
        html_body: str,
        text_body: str | None,
    ) -> None:
        self.kind = kind
        self.language = language
        self.is_custom = is_custom
        self._subject: Template = TEXT_ENV.from_string(subject)
        self._html: Template = HTML_ENV.from_string(html_body)
        # None: the plain-text part is derived from the rendered HTML.
        self._text: Template | None = (
            TEXT_ENV.from_string(text_body) if text_body is not None else None
        )

    def render(self, context: Mapping[str, Any]) -> RenderedEmail:
        """The three parts, within one time budget; TemplateTooSlow / TemplateTooLarge past it."""
        with budget():
            html = self._html.render(context)
            text = self._text.render(context) if self._text is not None else html_to_text(html)
            # A header is one line: merge values with line breaks must not split the subject.
            subject = " ".join(self._subject.render(context).split())
        return RenderedEmail(subject=subject, html=html, text=text)

    def __repr__(self) -> str:
        origin = "custom" if self.is_custom else "default"
        return f"<CompiledEmailTemplate {self.kind.value}/{self.language} {origin}>"


def load_email_template(
    session: Session, user_type_id: int, kind: EmailKind | str, language: str
) -> CompiledEmailTemplate:
    """The org's saved template for (user type, kind, language) if any; else the shipped default
    for the language; an unsupported language falls back to English. Raises InvalidInput for a
    language code that is not a plausible code at all."""
    kind = email_kind(kind)
    language = resolve_language(language)
    saved = session.scalar(
        select(EmailTemplate).where(
            EmailTemplate.user_type_id == user_type_id,
            EmailTemplate.kind == kind,
            EmailTemplate.language == language,
        )
    )
    if saved is None:
        return default_template(kind, language)
    return CompiledEmailTemplate(
        kind=kind,
        language=language,
        is_custom=True,
        subject=saved.subject,
        html_body=saved.html_body,
        text_body=saved.text_body,
    )


@lru_cache(maxsize=len(SUPPORTED_LANGUAGES) * len(EmailKind))
def default_template(kind: EmailKind, language: str) -> CompiledEmailTemplate:
    """The shipped default, compiled once per process (the files never change at runtime)."""
    source = default_source(kind, language)
    return CompiledEmailTemplate(kind=kind, language=language, is_custom=False, **source)


def default_source(kind: EmailKind, language: str) -> dict[str, str]:
    """The shipped default's source: ``subject``, ``html_body`` and ``text_body``."""
    if language not in SUPPORTED_LANGUAGES:
        raise InvalidInput(f"no default template for language {language!r}")
    folder = resources.files("portalflow.templates") / "email" / kind.value / language
    return {
        "subject": (folder / "subject.txt").read_text(encoding="utf-8").strip(),
        "html_body": (folder / "body.html").read_text(encoding="utf-8"),
        "text_body": (folder / "body.txt").read_text(encoding="utf-8"),
    }


def resolve_language(language: str) -> str:
    """A supported language for a tag: its primary subtag if supported, else English."""
    match = _LANGUAGE_TAG.fullmatch(language.strip()) if isinstance(language, str) else None
    if match is None:
        raise InvalidInput(f"{language!r} is not a language code (e.g. en, fr, ja)")
    primary = match.group(1).lower()
    return primary if primary in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE


def email_kind(kind: EmailKind | str) -> EmailKind:
    """``kind`` as an email kind that has templates, or InvalidInput naming those kinds."""
    try:
        found = EmailKind(kind)
    except ValueError:
        found = None
    if found not in EMAIL_TEMPLATE_KINDS:
        allowed = ", ".join(member.value for member in EMAIL_TEMPLATE_KINDS)
        raise InvalidInput(f"email kind {kind!r} is not one of: {allowed}")
    assert found is not None
    return found


def render_context(
    *,
    record: Mapping[str, Any],
    org: Org,
    portal: Portal,
    user_type: PortalUserType,
    inviter_name: str | None,
    link: str,
    kind: EmailKind,
    expires_at: datetime | None,
    portal_url: str | None = None,
    language: str = "en",
) -> dict[str, Any]:
    """Plain dicts only (never ORM objects): what a template's merge fields can reach.

    ``portal.url`` is ``portal_url`` when given, else the link without its action and query.
    """
    return build_context(
        language=language,
        record=record,
        org_name=org.name,
        portal_name=portal.name,
        portal_url=portal_url if portal_url is not None else _portal_url(link),
        user_type_name=user_type.name,
        inviter_name=inviter_name,
        link=link,
        kind=kind,
        expires_at=expires_at,
    )


def build_context(
    *,
    record: Mapping[str, Any],
    org_name: str,
    portal_name: str,
    portal_url: str,
    user_type_name: str,
    inviter_name: str | None,
    link: str,
    kind: EmailKind,
    expires_at: datetime | None,
    language: str = "en",
) -> dict[str, Any]:
    """The template context from plain values (``render_context`` without the ORM objects).

    ``expires_at`` is the expiry date written out in ``language`` ("December 8, 2026",
    "8. Dezember 2026"), never ISO.
    """
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return {
        # None would render as the word "None".
        "record": {str(key): "" if value is None else value for key, value in record.items()},
        "portal": {"name": portal_name, "url": portal_url},
        "org": {"name": org_name},
        "user_type": {"name": user_type_name},
        "inviter": {"name": inviter_name or ""},
        "link": link,
        LINK_VARIABLE[kind]: link,
        "expires_at": long_date(expires_at.astimezone(UTC).date(), language) if expires_at else "",
    }


@lru_cache(maxsize=256)
def long_date(day: date, language: str) -> str:
    """``day`` as people of ``language`` write it (Babel's long format); English if unknown."""
    try:
        return format_date(day, format="long", locale=Locale.parse(language.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        return format_date(day, format="long", locale="en")


def _portal_url(link: str) -> str:
    """``https://host/portal/zylker/accept?token=...`` -> ``https://host/portal/zylker``."""
    if not link:
        return ""
    parts = urlsplit(link)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rpartition("/")[0], "", ""))


# --- HTML to plain text -----------------------------------------------------------------

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
