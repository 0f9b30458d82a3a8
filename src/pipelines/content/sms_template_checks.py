"""Trying an org's SMS template before it goes out: a trial render against its DLT text.

The kind's pending (else in-use) mapped template is rendered with plausible sample values
(links on the org's short-link domain), overridable key by key, and checked as a send
would check it (``sms_rendering``): the outcome says what would be sent, or why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import DltTemplate, Org, SmsTemplateKind
from portalflow.pipelines.errors import InvalidInput

from .sms_rendering import CheckedSms, DltMismatch, render_checked
from .sms_templates import IN_USE, PENDING, get_org, kind_rows, sms_kind, split_rows

# What `check` fills the merge fields with unless told otherwise.
SAMPLE_RECORD = {
    "crm_id": "1000001",
    "module": "Contacts",
    "first_name": "Sage",
    "last_name": "Weiser",
    "email": "sage.weiser@example.com",
    "phone": "+919876543210",
}
SAMPLE_SHORT_CODE = "Ab3dE6gH9k"
SAMPLE_CODE = "493817"
SAMPLE_EXPIRY_HOURS = "24"


@dataclass(frozen=True)
class SmsCheck:
    """The outcome of a trial render: ``checked`` when it fits, else ``mismatch``."""

    kind: SmsTemplateKind
    state: str  # IN_USE or PENDING
    body: str
    dlt_template_id: str
    dlt_content: str
    values: dict[str, Any]
    checked: CheckedSms | None
    mismatch: str | None


def check_template(
    session: Session,
    org_id: int,
    kind: SmsTemplateKind | str,
    *,
    config: Settings,
    values: Mapping[str, Any] | None = None,
) -> SmsCheck:
    """Trial-render the kind's pending (else in-use) mapped template against its DLT text.

    ``values`` override the sample values key by key (``record`` merged field by field).
    """
    org = get_org(session, org_id)
    kind = sms_kind(kind)
    in_use, edit = split_rows(kind_rows(session, org_id, kind))
    chosen, state = (
        (edit, PENDING) if edit is not None and edit[1] is not None else (in_use, IN_USE)
    )
    if chosen is None:
        if edit is not None:
            raise InvalidInput(
                f"the {kind.value} SMS template is not mapped to a DLT template yet; map it first"
            )
        raise InvalidInput(f"there is no {kind.value} SMS template yet; edit one first")
    template, mapping = chosen
    assert mapping is not None
    dlt = session.get(DltTemplate, mapping.dlt_template_id)
    assert dlt is not None
    filled = sample_values(org, kind, config=config)
    for key, value in (values or {}).items():
        if isinstance(value, Mapping) and isinstance(filled.get(key), dict):
            filled[key] = {**filled[key], **value}
        else:
            filled[key] = value
    try:
        checked: CheckedSms | None = render_checked(
            template.body,
            dlt.content,
            filled,
            whitespace_tolerant=org.sms_whitespace_tolerant,
            limits=config.variable_limits(),
        )
        mismatch = None
    except DltMismatch as exc:
        checked, mismatch = None, exc.detail
    return SmsCheck(
        kind, state, template.body, dlt.template_id, dlt.content, filled, checked, mismatch
    )


def sample_values(org: Org, kind: SmsTemplateKind, *, config: Settings) -> dict[str, Any]:
    """Plausible merge values for a trial render (links on the org's short-link domain)."""
    link = f"https://{config.short_link_domain(org.data_centre.value)}/{SAMPLE_SHORT_CODE}"
    values: dict[str, Any] = {
        "record": dict(SAMPLE_RECORD),
        "portal": {"name": org.portal.name if org.portal else org.name},
        "org": {"name": org.name},
    }
    if kind == SmsTemplateKind.INVITATION:
        values["invite_url"] = link
    elif kind == SmsTemplateKind.VERIFICATION:
        values["code"] = SAMPLE_CODE
    else:
        values |= {"reset_url": link, "expiry_hours": SAMPLE_EXPIRY_HOURS}
    return values
