"""An org's three SMS templates: edit, map to a DLT template, verify, and what is in use.

A kind has at most two rows: the one in use (its mapping approved) and an edit awaiting
approval. The approved one keeps being sent until the edit's mapping is approved; then the
older row and its mapping are deleted. Every step here flushes and never commits.

Example::

    edit_template(session, org.id, "verification", "{{ code }} is your code. - Zylker",
                  config=settings)
    map_template(session, org.id, "verification", "1207170000000000102")
    set_verification(session, org.id, "verification", "approved")
    assert "verification" in approved_templates(session, org.id)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    DltTemplate,
    DltTemplateStatus,
    Org,
    SmsTemplate,
    SmsTemplateKind,
    SmsTemplateMapping,
    VerificationStatus,
    utcnow,
)
from portalflow.pipelines.errors import InvalidInput, NotFound

from .sms_text import find_mismatch, parse_body, parse_dlt_content, validate_sms_template

IN_USE = "in use"
PENDING = "pending"


@dataclass(frozen=True)
class ApprovedSms:
    """An SMS template in use, with the DLT template it was verified against."""

    kind: SmsTemplateKind
    sms_template_id: int
    body: str
    dlt_template_id: str
    dlt_entity_id: str | None
    dlt_content: str
    header: str | None


@dataclass(frozen=True)
class TemplateVersion:
    """One row of a kind, with its mapping (if any) and the DLT template mapped to."""

    sms_template_id: int
    body: str
    verification: VerificationStatus | None
    dlt_template_id: str | None
    dlt_status: DltTemplateStatus | None
    mapping_id: int | None


@dataclass(frozen=True)
class KindOverview:
    kind: SmsTemplateKind
    in_use: TemplateVersion | None
    pending: TemplateVersion | None


# --- steps ----------------------------------------------------------------------------


def edit_template(
    session: Session, org_id: int, kind: SmsTemplateKind | str, body: str, *, config: Settings
) -> SmsTemplate:
    """Save new text for a kind, keeping an approved template in use until the edit is.

    The text is stored stripped: DLT content is, and an SMS must match it exactly.
    """
    org = _locked_org(session, org_id)
    kind = sms_kind(kind)
    body = body.strip()
    validate_sms_template(
        body,
        kind,
        org_name=org.name,
        short_link_domain=config.short_link_domain(org.data_centre.value),
        dynamic_url_prefixes=config.sms_dynamic_url_prefixes,
    )
    in_use, edit = split_rows(kind_rows(session, org_id, kind))
    if edit is not None:
        template, mapping = edit
        if in_use is not None and in_use[0].body == body:
            # Editing back to the text in use leaves nothing to approve.
            _delete(session, template, mapping)
            return in_use[0]
        if template.body != body:
            template.body = body
            if mapping is not None:
                session.delete(mapping)
        session.flush()
        return template
    if in_use is not None and in_use[0].body == body:
        return in_use[0]
    template = SmsTemplate(org_id=org_id, kind=kind, body=body)
    session.add(template)
    session.flush()
    return template


def map_template(
    session: Session, org_id: int, kind: SmsTemplateKind | str, dlt_template_id: str
) -> SmsTemplateMapping:
    """Pair the kind's newest text with a DLT template it matches; the mapping starts pending."""
    org = _locked_org(session, org_id)
    kind = sms_kind(kind)
    dlt = _dlt_template(session, org_id, dlt_template_id)
    in_use, edit = split_rows(kind_rows(session, org_id, kind))
    if edit is None:
        if in_use is None:
            raise InvalidInput(f"there is no {kind.value} SMS template yet; edit one first")
        template, mapping = in_use
        assert mapping is not None
        if mapping.dlt_template_id == dlt.id:
            return mapping
        raise InvalidInput(
            f"the {kind.value} SMS template in use is already mapped and approved; "
            "edit its text to map a new version"
        )
    template, mapping = edit
    _check_mappable(org, kind, template, dlt)
    if mapping is None:
        mapping = SmsTemplateMapping(org_id=org_id, sms_template_id=template.id)
        session.add(mapping)
    mapping.dlt_template_id = dlt.id
    mapping.verification = VerificationStatus.PENDING
    mapping.decided_at = None
    mapping.created_at = utcnow()
    session.flush()
    return mapping


def set_verification(
    session: Session,
    org_id: int,
    target: int | SmsTemplateKind | str,
    status: VerificationStatus | str,
) -> SmsTemplateMapping:
    """Approve or reject a mapping (by id, or the kind's pending one).

    Approving puts its template in use and deletes the kind's older row with its mapping.
    """
    org = _locked_org(session, org_id)
    decided = {VerificationStatus.APPROVED.value, VerificationStatus.REJECTED.value}
    if str(status) not in decided:
        raise InvalidInput(f"a verification is approved or rejected, not {status!r}")
    status = VerificationStatus(str(status))
    mapping = _target_mapping(session, org_id, target)
    template = session.get(SmsTemplate, mapping.sms_template_id)
    assert template is not None
    if status == VerificationStatus.APPROVED:
        dlt = session.get(DltTemplate, mapping.dlt_template_id)
        assert dlt is not None
        # The DLT registry may have been re-imported since the mapping was made.
        _check_mappable(org, template.kind, template, dlt)
        for other, other_mapping in kind_rows(session, org_id, template.kind):
            if other.id != template.id:
                _delete(session, other, other_mapping)
    mapping.verification = status
    mapping.decided_at = utcnow()
    session.flush()
    return mapping


# --- reading --------------------------------------------------------------------------


def approved_templates(session: Session, org_id: int) -> dict[SmsTemplateKind, ApprovedSms]:
    """The templates in use: approved mapping to a DLT template still approved there."""
    query = (
        select(SmsTemplate, DltTemplate)
        .join(SmsTemplateMapping, SmsTemplateMapping.sms_template_id == SmsTemplate.id)
        .join(DltTemplate, DltTemplate.id == SmsTemplateMapping.dlt_template_id)
        .where(
            SmsTemplate.org_id == org_id,
            SmsTemplateMapping.verification == VerificationStatus.APPROVED,
            DltTemplate.status == DltTemplateStatus.APPROVED,
        )
        .order_by(SmsTemplate.id)
    )
    return {
        template.kind: ApprovedSms(
            kind=template.kind,
            sms_template_id=template.id,
            body=template.body,
            dlt_template_id=dlt.template_id,
            dlt_entity_id=dlt.entity_id,
            dlt_content=dlt.content,
            header=dlt.header,
        )
        for template, dlt in session.execute(query)
    }


def sms_ready(session: Session, org_id: int) -> bool:
    """True when all three kinds have a template in use, so SMS invitations may go out."""
    return len(approved_templates(session, org_id)) == len(SmsTemplateKind)


def overview(session: Session, org_id: int) -> list[KindOverview]:
    """Per kind: the version in use and the one awaiting approval (either may be None)."""
    get_org(session, org_id)
    query = (
        select(SmsTemplate, SmsTemplateMapping, DltTemplate)
        .outerjoin(SmsTemplateMapping, SmsTemplateMapping.sms_template_id == SmsTemplate.id)
        .outerjoin(DltTemplate, DltTemplate.id == SmsTemplateMapping.dlt_template_id)
        .where(SmsTemplate.org_id == org_id)
        .order_by(SmsTemplate.id)
    )
    by_kind: dict[SmsTemplateKind, list[TemplateVersion]] = {kind: [] for kind in SmsTemplateKind}
    for template, mapping, dlt in session.execute(query):
        by_kind[template.kind].append(
            TemplateVersion(
                sms_template_id=template.id,
                body=template.body,
                verification=mapping.verification if mapping else None,
                dlt_template_id=dlt.template_id if dlt else None,
                dlt_status=dlt.status if dlt else None,
                mapping_id=mapping.id if mapping else None,
            )
        )
    result = []
    for kind, versions in by_kind.items():
        approved = [v for v in versions if v.verification == VerificationStatus.APPROVED]
        waiting = [v for v in versions if v.verification != VerificationStatus.APPROVED]
        result.append(
            KindOverview(kind, approved[-1] if approved else None, waiting[-1] if waiting else None)
        )
    return result


def sms_kind(value: SmsTemplateKind | str) -> SmsTemplateKind:
    """The kind named by ``value``; InvalidInput listing the kinds otherwise."""
    try:
        return SmsTemplateKind(str(value).strip().lower().replace("-", "_"))
    except ValueError:
        kinds = ", ".join(kind.value for kind in SmsTemplateKind)
        raise InvalidInput(f"SMS template kind {value!r} is not one of: {kinds}") from None


# --- helpers --------------------------------------------------------------------------

_Row = tuple[SmsTemplate, SmsTemplateMapping | None]


def get_org(session: Session, org_id: int) -> Org:
    org = session.get(Org, org_id)
    if org is None:
        raise NotFound(f"org {org_id} does not exist")
    return org


def _locked_org(session: Session, org_id: int) -> Org:
    """The org row, locked: one change to an org's SMS templates at a time (two rows max)."""
    org = session.scalar(select(Org).where(Org.id == org_id).with_for_update())
    if org is None:
        raise NotFound(f"org {org_id} does not exist")
    return org


def kind_rows(session: Session, org_id: int, kind: SmsTemplateKind) -> list[_Row]:
    query = (
        select(SmsTemplate, SmsTemplateMapping)
        .outerjoin(SmsTemplateMapping, SmsTemplateMapping.sms_template_id == SmsTemplate.id)
        .where(SmsTemplate.org_id == org_id, SmsTemplate.kind == kind)
        .order_by(SmsTemplate.id)
    )
    return [(template, mapping) for template, mapping in session.execute(query)]


def split_rows(rows: list[_Row]) -> tuple[_Row | None, _Row | None]:
    """(the row in use, the newest row awaiting approval)."""
    in_use = [row for row in rows if row[1] and row[1].verification == VerificationStatus.APPROVED]
    waiting = [row for row in rows if row not in in_use]
    return (in_use[-1] if in_use else None), (waiting[-1] if waiting else None)


def _delete(session: Session, template: SmsTemplate, mapping: SmsTemplateMapping | None) -> None:
    if mapping is not None:
        session.delete(mapping)
        session.flush()
    session.delete(template)
    session.flush()


def _dlt_template(session: Session, org_id: int, dlt_template_id: str) -> DltTemplate:
    wanted = str(dlt_template_id).strip()
    dlt = session.scalar(
        select(DltTemplate).where(DltTemplate.org_id == org_id, DltTemplate.template_id == wanted)
    )
    if dlt is None:
        raise NotFound(
            f"DLT template {wanted} is not in org {org_id}'s registry; import the DLT file first"
        )
    return dlt


def _check_mappable(
    org: Org, kind: SmsTemplateKind, template: SmsTemplate, dlt: DltTemplate
) -> None:
    if dlt.status != DltTemplateStatus.APPROVED:
        raise InvalidInput(
            f"DLT template {dlt.template_id} is {dlt.status.value} on the DLT portal; only an "
            "approved DLT template can be mapped"
        )
    try:
        registered = parse_dlt_content(dlt.content)
    except InvalidInput as exc:
        raise InvalidInput(f"DLT template {dlt.template_id} cannot be read: {exc}") from None
    mismatch = find_mismatch(
        parse_body(template.body), registered, whitespace_tolerant=org.sms_whitespace_tolerant
    )
    if mismatch is not None:
        raise InvalidInput(
            f"the {kind.value} SMS template does not match DLT template {dlt.template_id}: "
            f"{mismatch}"
        )


def _target_mapping(
    session: Session, org_id: int, target: int | SmsTemplateKind | str
) -> SmsTemplateMapping:
    if isinstance(target, int) and not isinstance(target, bool):
        mapping = session.get(SmsTemplateMapping, target)
        if mapping is None or mapping.org_id != org_id:
            raise NotFound(f"SMS template mapping {target} does not exist in org {org_id}")
        return mapping
    kind = sms_kind(target)
    _, edit = split_rows(kind_rows(session, org_id, kind))
    if edit is None or edit[1] is None:
        raise InvalidInput(
            f"no {kind.value} SMS template mapping is awaiting verification; map the template "
            "to a DLT template first"
        )
    return edit[1]
