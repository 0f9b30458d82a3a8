"""SMS templates: rules on save, mapping to DLT templates, verification, what is in use."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
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
)
from portalflow.pipelines.content.sms_template_checks import check_template
from portalflow.pipelines.content.sms_templates import (
    IN_USE,
    PENDING,
    approved_templates,
    edit_template,
    map_template,
    overview,
    set_verification,
    sms_ready,
)
from portalflow.pipelines.errors import InvalidInput, NotFound

from ..factories import (
    DLT_FIXTURES,
    SMS_BODIES,
    SMS_CONFIG,
    approve_sms_template,
    make_sms_org,
)

FIXTURES = DLT_FIXTURES
CONFIG = SMS_CONFIG
BODIES = SMS_BODIES
INVITE, VERIFY, FORGOT = (body for body, _ in SMS_BODIES.values())
REJECTED_DLT = "1207170000000000104"


@pytest.fixture
def org(session: Session) -> Org:
    return make_sms_org(session)


_approve = approve_sms_template


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_all_three_approved_make_sms_ready(session: Session, org: Org) -> None:
    assert not sms_ready(session, org.id)
    for kind in SmsTemplateKind:
        _approve(session, org, kind)
    session.commit()

    assert sms_ready(session, org.id)
    approved = approved_templates(session, org.id)
    invite = approved[SmsTemplateKind.INVITATION]
    assert (invite.body, invite.dlt_template_id, invite.header, invite.dlt_entity_id) == (
        INVITE, "1207170000000000101", "ZYLKER", "1201170000000000001",
    )  # fmt: skip
    assert invite.dlt_content.startswith("Dear {#var#}, you are invited")
    assert approved[SmsTemplateKind.FORGOT_PASSWORD].body == FORGOT


def test_sms_not_ready_while_one_kind_is_unapproved(session: Session, org: Org) -> None:
    _approve(session, org, SmsTemplateKind.INVITATION)
    _approve(session, org, SmsTemplateKind.VERIFICATION)
    edit_template(session, org.id, SmsTemplateKind.FORGOT_PASSWORD, FORGOT, config=CONFIG)
    mapping = map_template(session, org.id, SmsTemplateKind.FORGOT_PASSWORD, "1207170000000000103")
    assert mapping.verification == VerificationStatus.PENDING
    assert not sms_ready(session, org.id)
    assert set(approved_templates(session, org.id)) == {
        SmsTemplateKind.INVITATION,
        SmsTemplateKind.VERIFICATION,
    }
    set_verification(session, org.id, "forgot_password", VerificationStatus.REJECTED)
    assert not sms_ready(session, org.id)


def test_a_mapping_that_does_not_match_is_refused_showing_where(session: Session, org: Org) -> None:
    body = INVITE.replace("within 7 days", "within 3 days")
    edit_template(session, org.id, "invitation", body, config=CONFIG)
    with pytest.raises(InvalidInput) as refused:
        map_template(session, org.id, "invitation", "1207170000000000101")
    message = str(refused.value)
    assert "does not match DLT template 1207170000000000101" in message
    assert "after merge field 2 ({{ portal.name }})" in message
    assert '"3 days: {{ invite_url }}' in message and '"7 days: {#var#}' in message
    assert _count(session, SmsTemplateMapping) == 0


def test_a_whitespace_only_difference_needs_a_tolerant_org(session: Session, org: Org) -> None:
    body = VERIFY.replace("portal. Do", "portal.  Do")
    edit_template(session, org.id, "verification", body, config=CONFIG)
    with pytest.raises(InvalidInput, match="only whitespace differs"):
        map_template(session, org.id, "verification", "1207170000000000102")

    org.sms_whitespace_tolerant = True
    mapping = map_template(session, org.id, "verification", "1207170000000000102")
    assert mapping.verification == VerificationStatus.PENDING


def test_dlt_side_rejected_pending_or_unknown_cannot_be_mapped(session: Session, org: Org) -> None:
    session.add(
        DltTemplate(org_id=org.id, template_id="1207170000000000199", content=INVITE,
                    status=DltTemplateStatus.PENDING, variable_count=0)
    )  # fmt: skip
    edit_template(session, org.id, "invitation", INVITE, config=CONFIG)
    with pytest.raises(InvalidInput, match="is rejected on the DLT portal"):
        map_template(session, org.id, "invitation", REJECTED_DLT)
    with pytest.raises(InvalidInput, match="is pending on the DLT portal"):
        map_template(session, org.id, "invitation", "1207170000000000199")
    with pytest.raises(NotFound, match="import the DLT file first"):
        map_template(session, org.id, "invitation", "1207170000000000999")
    assert _count(session, SmsTemplateMapping) == 0


def test_an_edit_keeps_the_approved_template_in_use_until_approved(
    session: Session, org: Org
) -> None:
    _approve(session, org, SmsTemplateKind.VERIFICATION)
    old_id = approved_templates(session, org.id)[SmsTemplateKind.VERIFICATION].sms_template_id
    session.add(
        DltTemplate(
            org_id=org.id,
            template_id="1207170000000000110",
            content="{#numeric#} is your {#var#} portal code. - Zylker",
            status=DltTemplateStatus.APPROVED,
            variable_count=2,
        )
    )
    new_body = "{{ code }} is your {{ portal.name }} portal code. - Zylker"

    edit = edit_template(session, org.id, "verification", new_body, config=CONFIG)
    assert edit.id != old_id
    assert approved_templates(session, org.id)[SmsTemplateKind.VERIFICATION].body == VERIFY
    map_template(session, org.id, "verification", "1207170000000000110")
    assert approved_templates(session, org.id)[SmsTemplateKind.VERIFICATION].body == VERIFY
    [state] = [item for item in overview(session, org.id) if item.kind == "verification"]
    assert state.in_use is not None and state.in_use.body == VERIFY
    assert state.pending is not None and state.pending.verification == VerificationStatus.PENDING

    set_verification(session, org.id, "verification", "approved")
    session.commit()
    in_use = approved_templates(session, org.id)[SmsTemplateKind.VERIFICATION]
    assert (in_use.body, in_use.dlt_template_id) == (new_body, "1207170000000000110")
    assert session.get(SmsTemplate, old_id) is None
    assert _count(session, SmsTemplate) == 1 and _count(session, SmsTemplateMapping) == 1


def test_editing_an_unapproved_template_updates_it_in_place(session: Session, org: Org) -> None:
    first = edit_template(session, org.id, "invitation", INVITE, config=CONFIG)
    map_template(session, org.id, "invitation", "1207170000000000101")
    same = edit_template(session, org.id, "invitation", INVITE, config=CONFIG)
    assert same.id == first.id and _count(session, SmsTemplateMapping) == 1

    stripped = edit_template(session, org.id, "invitation", f"  {INVITE}\n", config=CONFIG)
    assert stripped.body == INVITE and _count(session, SmsTemplateMapping) == 1
    body = INVITE.replace("Dear", "Hi")
    changed = edit_template(session, org.id, "invitation", body, config=CONFIG)
    assert changed.id == first.id and changed.body == body
    assert _count(session, SmsTemplateMapping) == 0  # the body changed: map it again


def test_an_edit_is_updated_in_place_and_editing_back_drops_it(session: Session, org: Org) -> None:
    _approve(session, org, SmsTemplateKind.INVITATION)
    edit = edit_template(session, org.id, "invitation", INVITE.replace("Dear", "Hi"),
                         config=CONFIG)  # fmt: skip
    again = edit_template(session, org.id, "invitation", INVITE.replace("Dear", "Hello"),
                          config=CONFIG)  # fmt: skip
    assert again.id == edit.id and _count(session, SmsTemplate) == 2
    back = edit_template(session, org.id, "invitation", INVITE, config=CONFIG)
    assert _count(session, SmsTemplate) == 1
    assert (
        back.id == approved_templates(session, org.id)[SmsTemplateKind.INVITATION].sms_template_id
    )


def test_remapping_replaces_the_pending_mapping(session: Session, org: Org) -> None:
    session.add(
        DltTemplate(org_id=org.id, template_id="1207170000000000111", content=INVITE_DLT_COPY,
                    status=DltTemplateStatus.APPROVED, variable_count=3)
    )  # fmt: skip
    edit_template(session, org.id, "invitation", INVITE, config=CONFIG)
    first = map_template(session, org.id, "invitation", "1207170000000000101")
    set_verification(session, org.id, first.id, "rejected")
    second = map_template(session, org.id, "invitation", "1207170000000000111")
    assert second.id == first.id and second.verification == VerificationStatus.PENDING
    assert _count(session, SmsTemplateMapping) == 1


INVITE_DLT_COPY = (
    "Dear {#var#}, you are invited to the {#var#} portal. Accept within 7 days: {#var#} - Zylker"
)


def test_the_in_use_template_is_not_remapped(session: Session, org: Org) -> None:
    _approve(session, org, SmsTemplateKind.INVITATION)
    again = map_template(session, org.id, "invitation", "1207170000000000101")
    assert again.verification == VerificationStatus.APPROVED
    with pytest.raises(InvalidInput, match="edit its text to map a new version"):
        map_template(session, org.id, "invitation", "1207170000000000102")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (INVITE.replace(" - Zylker", ""), 'must end with "- Zylker"'),
        (INVITE.replace("{{ invite_url }}", "https://zylker.com/join"), "not on the short-link"),
        (INVITE.replace("{{ invite_url }}", "https://in.zcrm.to/j?x=1"), "has a '?'"),
        (INVITE.replace("{{ invite_url }}", "{{ code }}"), "unknown merge field(s) {{ code }}"),
        ("{% if record.first_name %}Hi{% endif %} - Zylker", "control statements"),
    ],
)
def test_a_template_breaking_a_rule_is_refused_and_nothing_written(
    session: Session, org: Org, body: str, needle: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        edit_template(session, org.id, "invitation", body, config=CONFIG)
    assert needle in str(refused.value)
    assert _count(session, SmsTemplate) == 0


def test_short_link_domain_follows_the_data_centre_setting(session: Session, org: Org) -> None:
    body = INVITE.replace("{{ invite_url }}", "{{ invite_url }} (help: sms.zylker.in/help)")
    config = Settings(sms_short_link_domains=("in=sms.zylker.in",))
    edit_template(session, org.id, "invitation", body, config=config)
    with pytest.raises(InvalidInput, match=r"not on the short-link domain in\.zcrm\.to"):
        edit_template(session, org.id, "invitation", body, config=CONFIG)


def test_verification_needs_a_mapping_and_a_decision(session: Session, org: Org) -> None:
    with pytest.raises(InvalidInput, match="no invitation SMS template mapping is awaiting"):
        set_verification(session, org.id, "invitation", "approved")
    edit_template(session, org.id, "invitation", INVITE, config=CONFIG)
    mapping = map_template(session, org.id, "invitation", "1207170000000000101")
    with pytest.raises(InvalidInput, match="approved or rejected"):
        set_verification(session, org.id, mapping.id, "pending")
    with pytest.raises(NotFound):
        set_verification(session, org.id, mapping.id + 100, "approved")
    with pytest.raises(InvalidInput, match="kind 'sms' is not one of"):
        set_verification(session, org.id, "sms", "approved")
    approved = set_verification(session, org.id, mapping.id, VerificationStatus.APPROVED)
    assert approved.decided_at is not None


def test_a_dlt_template_rejected_after_approval_takes_the_kind_out_of_use(
    session: Session, org: Org
) -> None:
    for kind in SmsTemplateKind:
        _approve(session, org, kind)
    dlt = session.scalar(
        select(DltTemplate).where(DltTemplate.template_id == "1207170000000000101")
    )
    assert dlt is not None
    dlt.status = DltTemplateStatus.REJECTED
    session.flush()
    assert not sms_ready(session, org.id)
    assert SmsTemplateKind.INVITATION not in approved_templates(session, org.id)


def test_check_renders_the_pending_else_the_in_use_template(session: Session, org: Org) -> None:
    with pytest.raises(InvalidInput, match="no invitation SMS template yet"):
        check_template(session, org.id, "invitation", config=CONFIG)
    _approve(session, org, SmsTemplateKind.INVITATION)
    result = check_template(session, org.id, "invitation", config=CONFIG)
    assert result.state == IN_USE and result.mismatch is None and result.checked is not None
    assert result.checked.text.startswith("Dear Sage, you are invited to the Zylker portal.")
    assert "https://in.zcrm.to/" in result.checked.text and result.checked.segments == 1

    long_name = {"record": {"first_name": "Bartholomew Montgomery-Fitzgerald"}}
    result = check_template(session, org.id, "invitation", config=CONFIG, values=long_name)
    assert result.checked is None
    assert result.mismatch == (
        "variable 1 ({#var#}, from {{ record.first_name }}) is 33 characters; the cap is 30"
    )

    edit_template(session, org.id, "invitation", INVITE.replace("Dear", "Hi"), config=CONFIG)
    assert check_template(session, org.id, "invitation", config=CONFIG).state == IN_USE
    session.add(
        DltTemplate(org_id=org.id, template_id="1207170000000000112",
                    content=INVITE_DLT_COPY.replace("Dear", "Hi"),
                    status=DltTemplateStatus.APPROVED, variable_count=3)
    )  # fmt: skip
    map_template(session, org.id, "invitation", "1207170000000000112")
    pending = check_template(session, org.id, "invitation", config=CONFIG)
    assert pending.state == PENDING and pending.dlt_template_id == "1207170000000000112"
