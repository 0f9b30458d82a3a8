"""Rendering the recipient's pages: the Jinja2 templates under ``templates/portal/``.

Each page is in one language: the invitation's when the link is one of ours, else the best
match of the browser's ``Accept-Language``, else English. The words of each language are a
TOML file in ``templates/portal/text/`` with the same keys as ``en.toml`` (a test keeps them
equal); a language without a file falls back to English.
"""

from __future__ import annotations

import gettext
import tomllib
from functools import lru_cache
from importlib.resources import files
from typing import Any

import pycountry
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from portalflow.pipelines.invitations import acceptance

DEFAULT_LANGUAGE = "en"

# The page holds a token in its URL: no referrer, no cache, no framing, no scripts.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("portalflow", "templates"), autoescape=select_autoescape()
    )


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """The languages the pages exist in, English first."""
    found = [
        entry.name.removesuffix(".toml")
        for entry in files("portalflow.templates").joinpath("portal", "text").iterdir()
        if entry.name.endswith(".toml")
    ]
    return (DEFAULT_LANGUAGE, *sorted(code for code in found if code != DEFAULT_LANGUAGE))


@lru_cache(maxsize=16)
def texts(language: str) -> dict[str, str]:
    """The words of the pages in ``language`` (one of :func:`languages`)."""
    path = files("portalflow.templates").joinpath("portal", "text", f"{language}.toml")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def language_choices() -> list[tuple[str, str]]:
    """(code, the language's own name) for the language select."""
    return [(code, texts(code)["language_name"]) for code in languages()]


@lru_cache(maxsize=16)
def country_choices(language: str) -> tuple[tuple[str, str], ...]:
    """(ISO 3166-1 alpha-2 code, name in ``language``) sorted by that name."""
    try:
        names = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        translate = names.gettext
    except OSError:  # no catalogue for that language: the English names
        translate = str
    pairs = [(code, translate(name)) for code, name in acceptance.countries()]
    return tuple(sorted(pairs, key=lambda pair: pair[1].casefold()))


def page_language(invitation_language: str | None, accept_language: str | None) -> str:
    """The invitation's language if we have it, else the browser's best, else English."""
    for candidate in [invitation_language, *_accepted(accept_language)]:
        if not candidate:
            continue
        primary = candidate.replace("_", "-").split("-")[0].lower()
        if primary in languages():
            return primary
    return DEFAULT_LANGUAGE


def _accepted(header: str | None) -> list[str]:
    """Accept-Language tags by preference (``q`` weights), best first."""
    weighted = []
    for position, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*" and weight > 0:
            weighted.append((-weight, position, tag))
    return [tag for _weight, _position, tag in sorted(weighted)]


def render(template: str, language: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """``templates/portal/<template>`` in ``language``, with the pages' security headers."""
    values.setdefault("page", template.removesuffix(".html"))
    html = (
        _environment()
        .get_template(f"portal/{template}")
        .render(language=language, t=texts(language), **values)
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def message(
    language: str,
    key: str,
    status_code: int,
    org_name: str | None = None,
    headers: dict[str, str] | None = None,
    **placeholders: object,
) -> HTMLResponse:
    """A page of one title and one paragraph: ``<key>_title`` and ``<key>_body``."""
    words = texts(language)
    response = render(
        "message.html",
        language,
        status_code,
        page=key,
        title=words[f"{key}_title"].format(**placeholders),
        body=words[f"{key}_body"].format(**placeholders),
        org_name=org_name,
    )
    response.headers.update(headers or {})
    return response
