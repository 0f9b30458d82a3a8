"""What portalflow adds to every invitation email around the template: logo, footer, opt-out.

Added after rendering, so an admin's own template cannot lose them: the org's logo above
the HTML content, and below both parts the org's footer (its address, a support contact)
and the visible "stop invitations from <org>" link, in the email's language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from markupsafe import escape

from .rendering import RenderedEmail

STOP_INVITATIONS: dict[str, str] = {
    "en": "Stop invitations from {org}",
    "de": "Keine Einladungen mehr von {org}",
    "es": "No recibir más invitaciones de {org}",
    "fr": "Ne plus recevoir d'invitations de {org}",
    "hi": "{org} से आमंत्रण बंद करें",
    "ja": "{org} からの招待を停止する",
}
_BODY_OPEN = re.compile(r"<body\b[^<>]*>", re.IGNORECASE)  # [^<>]: linear on a stray "<body"
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_FOOTER_STYLE = "max-width:560px;margin:16px auto 0;font-size:12px;line-height:1.5;color:#7b8794;"


@dataclass(frozen=True)
class Branding:
    """One org's additions to its emails; ``opt_out_url`` empty: no opt-out link."""

    org_name: str
    logo_url: str | None = None
    footer: str | None = None
    opt_out_url: str = ""


def stop_text(language: str, org_name: str) -> str:
    phrase = STOP_INVITATIONS.get(language.split("-")[0].lower(), STOP_INVITATIONS["en"])
    return phrase.format(org=org_name)


def brand(rendered: RenderedEmail, branding: Branding, language: str) -> RenderedEmail:
    """``rendered`` with the logo, the footer and the opt-out link added to both parts."""
    stop = stop_text(language, branding.org_name)
    text_lines = [rendered.text.rstrip("\n"), ""]
    html_footer: list[str] = []
    if branding.footer:
        text_lines += ["--", branding.footer.strip()]
        html_footer.append(f"<p>{escape(branding.footer.strip())}</p>".replace("\n", "<br>"))
    if branding.opt_out_url:
        text_lines.append(f"{stop}: {branding.opt_out_url}")
        url = escape(branding.opt_out_url)
        html_footer.append(f'<p><a href="{url}" style="color:#7b8794;">{escape(stop)}</a></p>')
    html = rendered.html
    if branding.logo_url:
        src, alt = escape(branding.logo_url), escape(branding.org_name)
        logo = (
            f'<div style="max-width:560px;margin:0 auto 16px;">'
            f'<img src="{src}" alt="{alt}" style="max-height:48px;"></div>'
        )
        html = _insert_after_body_open(html, logo)
    if html_footer:
        html = _insert_before_body_close(
            html, f'<div style="{_FOOTER_STYLE}">{"".join(html_footer)}</div>'
        )
    return replace(rendered, html=html, text="\n".join(text_lines) + "\n")


def _insert_after_body_open(html: str, block: str) -> str:
    opening = _BODY_OPEN.search(html)
    return html[: opening.end()] + block + html[opening.end() :] if opening else block + html


def _insert_before_body_close(html: str, block: str) -> str:
    closings = list(_BODY_CLOSE.finditer(html))
    if not closings:
        return html + block
    at = closings[-1].start()
    return html[:at] + block + html[at:]
