"""Turning one claimed SMS invitation into a DLT-checked message, or a failure code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from portalflow.models import (
    CrmRecord,
    EmailKind,
    Invitation,
    Org,
    SendFailureCode,
    SmsTemplateKind,
)
from portalflow.pipelines.content.sms_rendering import CheckedSms, DltMismatch, render_checked
from portalflow.pipelines.content.sms_templates import ApprovedSms, approved_templates
from portalflow.pipelines.invitations import tokens

from .channels.base import SendFailure
from .channels.sms_base import OutgoingSms

SCHEME = "https://"
# The org-wide SMS template each kind of message is sent with.
SMS_TEMPLATE_OF_KIND: dict[EmailKind, SmsTemplateKind] = {
    EmailKind.ACCEPT_INVITATION: SmsTemplateKind.INVITATION,
    EmailKind.SIGN_IN_CODE: SmsTemplateKind.VERIFICATION,
    EmailKind.RESET_PASSWORD: SmsTemplateKind.FORGOT_PASSWORD,
}


def short_link(domain: str, code: str) -> str:
    return f"{SCHEME}{domain}/{code}"


def short_code_length(domain: str, limits: Mapping[str, int]) -> int:
    """The longest code whose link still fits a DLT url variable (never under 10)."""
    cap = limits.get("url", limits["var"])
    return max(10, cap - len(short_link(domain, "")))


@dataclass(frozen=True)
class PreparedSms:
    sms: OutgoingSms
    checked: CheckedSms


@dataclass
class SmsBuilder:
    """Renders invitation SMS against their approved DLT templates, per org once per dispatch."""

    session: Session
    variable_limits: Mapping[str, int]
    approved: dict[int, dict[SmsTemplateKind, ApprovedSms]] = field(default_factory=dict)

    def build(
        self, invitation: Invitation, record: CrmRecord, org: Org, link: str, code: str = ""
    ) -> PreparedSms:
        """The checked SMS; SendFailure (permanent) when it cannot be sent as approved.

        ``link`` is the short link of the message's token; ``code`` the token itself (a
        verification SMS carries the one-time code, no link).
        """
        assert org.portal is not None and invitation.address
        kind = SMS_TEMPLATE_OF_KIND.get(invitation.kind, SmsTemplateKind.INVITATION)
        template = self._approved(org.id).get(kind)
        if template is None:
            raise SendFailure(
                "sms_templates_not_approved",
                f"the {kind.value} SMS template has no approved DLT mapping",
                temporary=False,
            )
        values: dict[str, object] = {
            "record": record.merge_fields(),
            "portal": {"name": org.portal.name},
            "org": {"name": org.name},
        }
        if kind == SmsTemplateKind.VERIFICATION:
            values["code"] = code
        elif kind == SmsTemplateKind.FORGOT_PASSWORD:
            hours = tokens.lifetime(invitation.kind).total_seconds() / 3600
            values |= {"reset_url": link, "expiry_hours": max(1, round(hours))}
        else:
            values["invite_url"] = link
        try:
            checked = render_checked(
                template.body,
                template.dlt_content,
                values,
                whitespace_tolerant=org.sms_whitespace_tolerant,
                limits=self.variable_limits,
            )
        except DltMismatch as mismatch:
            raise SendFailure(
                SendFailureCode.DLT_MISMATCH.value, mismatch.detail, temporary=False
            ) from None
        sms = OutgoingSms(
            invitation_id=invitation.id,
            to=invitation.address,
            body=checked.text,
            sender_id=org.sms_sender_id or template.header,
            dlt_entity_id=template.dlt_entity_id,
            dlt_template_id=template.dlt_template_id,
        )
        return PreparedSms(sms, checked)

    def _approved(self, org_id: int) -> dict[SmsTemplateKind, ApprovedSms]:
        if org_id not in self.approved:
            self.approved[org_id] = approved_templates(self.session, org_id)
        return self.approved[org_id]
