"""An org's email branding: the logo above and the footer below its invitation emails."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from portalflow.models import Org
from portalflow.pipelines.errors import InvalidInput

from .orgs import get_org

MAX_FOOTER_LENGTH = 1000


def set_email_branding(
    session: Session, org_id: int, *, logo_url: str | None = None, footer: str | None = None
) -> Org:
    """Set the logo above and the footer below the org's invitation emails ("" clears)."""
    org = get_org(session, org_id)
    if logo_url is not None:
        logo_url = logo_url.strip()
        parts = urlsplit(logo_url)
        if logo_url and (parts.scheme != "https" or not parts.netloc or len(logo_url) > 2000):
            raise InvalidInput(
                f"logo URL {logo_url!r} must be an https:// URL of at most 2,000 characters "
                "(mail clients block images over plain http)"
            )
        org.logo_url = logo_url or None
    if footer is not None:
        footer = footer.replace("\\n", "\n").strip()
        if len(footer) > MAX_FOOTER_LENGTH:
            raise InvalidInput(
                f"the footer has {len(footer):,} characters; at most {MAX_FOOTER_LENGTH:,}"
            )
        org.email_footer = footer or None
    session.flush()
    return org
