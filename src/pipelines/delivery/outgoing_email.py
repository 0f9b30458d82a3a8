"""Turning one claimed email invitation into the bytes a provider takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, CrmUser, EmailKind, Invitation, Org, PortalUserType, utcnow
from portalflow.pipelines.content.email_branding import Branding, brand
from portalflow.pipelines.content.message import build_message
from portalflow.pipelines.content.rendering import (
    CompiledEmailTemplate,
    load_email_template,
    render_context,
)
from portalflow.pipelines.invitations import opt_out, tokens

from .channels.base import OutgoingEmail

DEFAULT_FROM = "no-reply@portalflow.invalid"


# The kinds an admin sends that a recipient may stop; a reset email the user asked for
# carries no opt-out (one click on it would block the next reset).
OPT_OUT_KINDS = frozenset({EmailKind.ACCEPT_INVITATION, EmailKind.CONFIRM_EMAIL})
# The recipient page each kind's link opens (``web.portal_links``, ``web.portal_signin``).
LINK_ACTIONS: dict[EmailKind, str] = {
    EmailKind.ACCEPT_INVITATION: "accept",
    EmailKind.CONFIRM_EMAIL: "confirm-email",
    EmailKind.RESET_PASSWORD: "reset-password",
}


def invitation_link(base_url: str, portal_slug: str, kind: EmailKind, token: str) -> str:
    action = LINK_ACTIONS.get(kind, "accept")
    return f"{base_url.rstrip('/')}/{portal_slug}/{action}?token={token}"


@dataclass
class EmailBuilder:
    """Renders and builds invitation emails, compiling each template once per dispatch."""

    session: Session
    portal_base_url: str
    default_from: str = DEFAULT_FROM
    link_key: bytes | None = None  # signs the opt-out links; None: emails carry none
    templates: dict[tuple[int, EmailKind, str], CompiledEmailTemplate] = field(default_factory=dict)

    def build(
        self,
        invitation: Invitation,
        record: CrmRecord,
        org: Org,
        user_type: PortalUserType,
        inviter: CrmUser | None,
        token: str,
    ) -> OutgoingEmail:
        assert org.portal is not None and invitation.address
        link = invitation_link(self.portal_base_url, org.portal.slug, invitation.kind, token)
        context = render_context(
            record=record.merge_fields(),
            org=org,
            portal=org.portal,
            user_type=user_type,
            inviter_name=inviter.name if inviter else None,
            link=link,
            kind=invitation.kind,
            expires_at=utcnow() + tokens.lifetime(invitation.kind),
            language=invitation.language,
        )
        headers = {"X-Portalflow-Invitation": str(invitation.id)}
        opt_out_url = ""
        if self.link_key is not None and invitation.kind in OPT_OUT_KINDS:
            token = opt_out.opt_out_token(self.link_key, invitation.id)
            opt_out_url = opt_out.opt_out_link(self.portal_base_url, token)
            # RFC 8058: mailbox providers show an unsubscribe button that POSTs here.
            headers["List-Unsubscribe"] = f"<{opt_out_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        branding = Branding(org.name, org.logo_url, org.email_footer, opt_out_url)
        rendered = brand(self._template(invitation).render(context), branding, invitation.language)
        from_address = org.default_from_email or self.default_from
        built = build_message(
            rendered=rendered,
            from_address=from_address,
            from_name=org.default_from_name or org.name,
            reply_to=org.default_reply_to,
            recipient=invitation.address,
            recipient_name=_full_name(record),
            headers=headers,
            message_id_domain=from_address.rpartition("@")[2],
        )
        return OutgoingEmail(
            invitation_id=invitation.id,
            envelope_from=built.envelope_from,
            recipient=built.recipient,
            raw=built.raw,
            message_id=built.message_id,
        )

    def _template(self, invitation: Invitation) -> CompiledEmailTemplate:
        key = (invitation.user_type_id, invitation.kind, invitation.language)
        if key not in self.templates:
            self.templates[key] = load_email_template(self.session, *key)
        return self.templates[key]


def _full_name(record: CrmRecord) -> str | None:
    name = " ".join(part for part in (record.first_name, record.last_name) if part)
    return name or None
