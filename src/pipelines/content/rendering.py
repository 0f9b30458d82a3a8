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

from .html_text import html_to_text
from .render_limits import budget
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
