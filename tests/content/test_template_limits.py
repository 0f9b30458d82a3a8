"""Renders are bounded: hostile templates are refused at save and fail alone at send.

No test here measures time: each asserts the code and that the call returns. On the code
before these bounds, the slow ones ran for hours and the large ones built hundreds of MB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    DltTemplate,
    EmailKind,
    EmailTemplate,
    Invitation,
    InvitationStatus,
    SendFailureCode,
    SmsTemplate,
    SmsTemplateKind,
    describe_failure,
)
from portalflow.pipelines.content import email_templates
from portalflow.pipelines.content.render_limits import (
    MAX_SMS_LENGTH,
    TemplateLimitExceeded,
    TemplateTooLarge,
    TemplateTooSlow,
)
from portalflow.pipelines.content.rendering import CompiledEmailTemplate, build_context
from portalflow.pipelines.content.sms_rendering import render_checked
from portalflow.pipelines.content.sms_templates import approved_templates
from portalflow.pipelines.content.sms_text import validate_sms_template
from portalflow.pipelines.delivery import credits, dispatch

from ..delivery.test_dispatch_core import CONFIG, expand_claimed, invite, outbox, statuses
from ..delivery.test_sms_dispatch import MOBILE, add_agent, outbox_channels, sms_world
from ..delivery.test_sms_dispatch import invite as invite_by_sms

SLOW = SendFailureCode.TEMPLATE_TOO_SLOW.value
LARGE = SendFailureCode.TEMPLATE_TOO_LARGE.value
LINK_HTML = '<p><a href="{{ invite_url }}">Accept</a></p>'

HOSTILE: list[tuple[str, str]] = [
    # Time: loops whose work is not output.
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", SLOW),
    ("{% for a in 'x' * 99999 %}{% for b in 'x' * 99999 %}{{ '' }}{% endfor %}{% endfor %}", SLOW),
    (
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
        SLOW,
    ),
    # Size: one expression asking for a giant.
    ("{{ 'x'|center(2 * 10 ** 8) }}", LARGE),
    ("{{ 'x'|center(200000000) }}", LARGE),
    ("{{ '%0999999999d' % 1 }}", LARGE),
    ("{{ '%0*d' % (999999999, 1) }}", LARGE),
    ("{{ '{:0999999999}'.format(1) }}", LARGE),
    ("{{ 'x'.ljust(10 ** 9) }}", LARGE),
    ("{{ 'A' * 10 ** 9 }}", LARGE),
    ("{{ 'x' * 1000000 }}", LARGE),
    ("{{ ((10 ** 100) ** 100) ** 100 }}", LARGE),
    ("{{ ('x' * 100000).replace('', 'y' * 100000) }}", LARGE),
    ("{{ range(100000)|map('string')|join('x' * 100000) }}", LARGE),
    ("{{ [1]|batch(10 ** 9, 'x')|list }}", LARGE),
    ("{{ lipsum(10 ** 6) }}", LARGE),
    ("{{ 5|round(-10 ** 9) }}", LARGE),
    # Size: a value doubled, or written over and over into a buffer.
    ("{% set a = 'x' * 100000 %}" + "{% set a = a ~ a %}" * 30, LARGE),
    ("{% set s %}{% for i in range(100000) %}" + "A" * 1000 + "{% endfor %}{% endset %}", LARGE),
    ("{% set a = 'x' * 100000 %}{% for i in range(100000) %}{{ a }}{% endfor %}", LARGE),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", LARGE),
]


def compiled(html: str) -> CompiledEmailTemplate:
    return CompiledEmailTemplate(
        kind=EmailKind.ACCEPT_INVITATION,
        language="en",
        is_custom=True,
        subject="Hi",
        html_body=LINK_HTML + html,
        text_body=None,
    )


def context() -> dict[str, object]:
    return build_context(
        record={"first_name": "Sage", "crm_id": "C-1"},
        org_name="Zylker",
        portal_name="Zylker Portal",
        portal_url="https://p.example/zylker",
        user_type_name="Client Portal",
        inviter_name=None,
        link="https://p.example/zylker/accept?token=T",
        kind=EmailKind.ACCEPT_INVITATION,
        expires_at=None,
    )


@pytest.mark.parametrize(("source", "code"), HOSTILE)
def test_a_hostile_render_stops_with_its_code(source: str, code: str) -> None:
    with pytest.raises(TemplateLimitExceeded) as raised:
        compiled(source).render(context())
    assert raised.value.code.value == code


def test_the_plain_text_made_from_hostile_html_is_bounded_too() -> None:
    # html.parser (before CPython 3.11.13) is quadratic on this: over 15 minutes here.
    with pytest.raises(TemplateTooSlow):
        compiled("{{ ('<a' * 450000)|safe }}").render(context())


def test_ordinary_templates_are_untouched() -> None:
    rendered = compiled(
        "{% for word in ['a', 'b'] %}{{ loop.index }}{{ word|upper|center(3) }}{% endfor %}"
        "{{ '%05d' % 42 }} {{ '{:>4}'.format('x') }} {{ 'ab' * 3 }} {{ 2 ** 10 }}"
    ).render(context())
    assert "1 A 2 B 00042    x ababab 1024" in rendered.html


@pytest.mark.parametrize(("source", "code"), HOSTILE[:1] + HOSTILE[3:7] + HOSTILE[16:18])
def test_save_refuses_a_hostile_template_with_its_code(
    session: Session, source: str, code: str
) -> None:
    run_id, _ = invite(session, 1)
    run = session.get_one(BulkRun, run_id)
    with pytest.raises(TemplateLimitExceeded) as raised:
        email_templates.save_custom_template(
            session,
            run.org_id,
            run.user_type_id,
            EmailKind.ACCEPT_INVITATION,
            "en",
            subject="Welcome",
            html_body=LINK_HTML + source,
        )
    assert raised.value.code.value == code
    assert session.scalar(select(func.count()).select_from(EmailTemplate)) == 0


@pytest.mark.parametrize(
    ("hostile", "code"),
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", SLOW),
        ("{{ 'x'|center(2 * 10 ** 8) }}", LARGE),
        ("{{ '%0999999999d' % 1 }}", LARGE),
    ],
)
def test_a_record_dependent_hostile_template_fails_that_invitation_alone(
    session: Session, tmp_path: Path, hostile: str, code: str
) -> None:
    run_id, [chunk_id] = invite(session, 12)
    run = session.get_one(BulkRun, run_id)
    # Hidden behind a record condition, it passes the trial render when saved.
    email_templates.save_custom_template(
        session,
        run.org_id,
        run.user_type_id,
        EmailKind.ACCEPT_INVITATION,
        "en",
        subject="Welcome {{ record.first_name }}",
        html_body=f"<p>{{% if record.crm_id == 'C-007' %}}{hostile}{{% endif %}}</p>{LINK_HTML}",
    )
    session.commit()
    claim = expand_claimed(session, chunk_id)

    result = dispatch.send_claim(session, claim.claim, channels=outbox(tmp_path), config=CONFIG)

    assert (len(result.sent), len(result.failed), result.retry) == (11, 1, [])
    assert statuses(session, run_id) == {"sent": 11, "failed": 1}
    failed = session.execute(
        select(Invitation.crm_id, Invitation.failure_code).where(
            Invitation.bulk_run_id == run_id, Invitation.status == InvitationStatus.FAILED
        )
    ).one()
    assert tuple(failed) == ("C-007", code)
    assert describe_failure(code) != describe_failure("no-such-code")


def test_an_sms_template_over_the_cap_is_refused_when_edited() -> None:
    body = "Hi {{ record.first_name }} " + "x" * MAX_SMS_LENGTH + " {{ invite_url }} - Zylker"
    with pytest.raises(TemplateTooLarge) as raised:
        validate_sms_template(
            body, SmsTemplateKind.INVITATION, org_name="Zylker", short_link_domain="in.zcrm.to"
        )
    assert raised.value.code.value == LARGE


def test_an_sms_rendered_over_the_cap_is_too_large() -> None:
    fields = 70  # each field renders 30 characters and a space: 2,170 in all
    body = "{{ record.first_name }} " * fields + "- Zylker"
    dlt = "{#var#} " * fields + "- Zylker"
    values = {"record": {"first_name": "x" * 30}}
    with pytest.raises(TemplateTooLarge):
        render_checked(body, dlt, values, whitespace_tolerant=False, limits={"var": 30})
    short = render_checked(
        body, dlt, {"record": {"first_name": "Al"}}, whitespace_tolerant=False, limits={"var": 30}
    )
    assert len(short.text) < MAX_SMS_LENGTH


def test_an_sms_rendered_over_the_cap_fails_that_invitation_alone(
    session: Session, tmp_path: Path
) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 500)
    # A template stored before the cap (or by hand): its length depends on the record.
    fields = 70
    approved = approved_templates(session, org.id)[SmsTemplateKind.INVITATION]
    template = session.get_one(SmsTemplate, approved.sms_template_id)
    dlt = session.scalars(
        select(DltTemplate).where(
            DltTemplate.org_id == org.id, DltTemplate.template_id == approved.dlt_template_id
        )
    ).one()
    template.body = "{{ record.first_name }} " * fields + "{{ invite_url }} - Zylker"
    dlt.content = "{#var#} " * fields + "{#var#} - Zylker"
    add_agent(session, org, "short", MOBILE, first_name="Al")
    add_agent(session, org, "long", "+91 98123 45679", first_name="Venkataramanan Subrahmanyam I")
    session.commit()
    _, ids = invite_by_sms(session, org, agents, inviter, ["short", "long"])

    result = dispatch.dispatch(session, ids, channels=outbox_channels(tmp_path), config=CONFIG)

    codes = dict(
        session.execute(
            select(Invitation.address, Invitation.failure_code).where(Invitation.id.in_(ids))
        ).all()
    )
    assert len(result.failed) == 1
    assert codes == {"+919812345678": None, "+919812345679": LARGE}
