"""Default templates per language, fallback, escaping, merge fields and HTML-to-text."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from jinja2.exceptions import SecurityError
from sqlalchemy.orm import Session

from portalflow.models import EMAIL_TEMPLATE_KINDS, EmailKind
from portalflow.pipelines.content.html_text import html_to_text
from portalflow.pipelines.content.rendering import (
    LINK_VARIABLE,
    SUPPORTED_LANGUAGES,
    CompiledEmailTemplate,
    build_context,
    default_template,
    load_email_template,
    long_date,
    render_context,
)
from portalflow.pipelines.errors import InvalidInput

from ..factories import client_portal, make_org

LINK = "https://portal.example.com/portal/zylker/accept?token=abc123&lang=en"
RECORD = {"first_name": "Sage", "last_name": "Weiser", "email": "sage@customer.example.org"}


def context(
    kind: EmailKind = EmailKind.ACCEPT_INVITATION, language: str = "en", **record: Any
) -> dict[str, Any]:
    return build_context(
        language=language,
        record={**RECORD, **record},
        org_name="Zylker",
        portal_name="Zylker Portal",
        portal_url="https://portal.example.com/portal/zylker",
        user_type_name="Client Portal",
        inviter_name="Russell Brown",
        link=LINK,
        kind=kind,
        expires_at=datetime(2030, 1, 31, 23, 0, tzinfo=UTC),
    )


def custom(html: str, *, subject: str = "Hi", text: str | None = None) -> CompiledEmailTemplate:
    return CompiledEmailTemplate(
        kind=EmailKind.ACCEPT_INVITATION,
        language="en",
        is_custom=True,
        subject=subject,
        html_body=html,
        text_body=text,
    )


@pytest.mark.parametrize(
    ("language", "written"),
    [("en", "May 6, 2030"), ("de", "6. Mai 2030"), ("ja", "2030年5月6日"), ("zz", "May 6, 2030")],
)
def test_the_expiry_date_is_written_in_the_recipients_language(language: str, written: str) -> None:
    assert long_date(date(2030, 5, 6), language) == written


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", EMAIL_TEMPLATE_KINDS)
def test_default_template_has_link_name_and_validity(kind: EmailKind, language: str) -> None:
    template = default_template(kind, language)
    rendered = template.render(context(kind, language))
    assert (template.language, template.is_custom) == (language, False)
    escaped_link = LINK.replace("&", "&amp;")
    assert f'href="{escaped_link}"' in rendered.html
    assert LINK in rendered.text
    assert "Sage" in rendered.html and "Sage" in rendered.text
    if kind == EmailKind.RESET_PASSWORD:
        assert "1" in rendered.text  # valid for one hour: a date would say nothing more
    else:
        # The expiry date as the recipient's language writes it, never ISO.
        assert "7" in rendered.text and long_date(date(2030, 1, 31), language) in rendered.text
    assert "2030-01-31" not in rendered.text
    assert "Zylker Portal" in rendered.subject and "\n" not in rendered.subject
    assert f'<html lang="{language}">' in rendered.html
    assert "{{" not in rendered.html + rendered.text + rendered.subject


def test_default_button_labels_match_kind() -> None:
    accept = default_template(EmailKind.ACCEPT_INVITATION, "en").render(context())
    confirm = default_template(EmailKind.CONFIRM_EMAIL, "en").render(
        context(EmailKind.CONFIRM_EMAIL)
    )
    assert "Accept Invite" in accept.html and "Confirm Email" not in accept.html
    assert "Confirm Email" in confirm.html and "Accept Invite" not in confirm.html
    assert "valid for 7 days" in accept.text
    assert "sage@customer.example.org" in confirm.text


def test_translations_differ_per_language() -> None:
    subjects = {
        default_template(EmailKind.ACCEPT_INVITATION, language).render(context()).subject
        for language in SUPPORTED_LANGUAGES
    }
    assert len(subjects) == len(SUPPORTED_LANGUAGES)


def test_default_templates_are_compiled_once() -> None:
    first = default_template(EmailKind.CONFIRM_EMAIL, "de")
    assert default_template(EmailKind.CONFIRM_EMAIL, "de") is first


def test_greeting_without_a_first_name() -> None:
    rendered = default_template(EmailKind.ACCEPT_INVITATION, "en").render(context(first_name=None))
    assert rendered.text.startswith("Hello,\n")
    assert "None" not in rendered.html + rendered.text


def test_load_falls_back_to_english_and_strips_regions(session: Session) -> None:
    user_type = client_portal(session, make_org(session))
    portuguese = load_email_template(session, user_type.id, EmailKind.ACCEPT_INVITATION, "pt")
    assert (portuguese.language, portuguese.is_custom) == ("en", False)
    assert portuguese.render(context()).subject == "You're invited to join Zylker Portal"
    canadian = load_email_template(session, user_type.id, "confirm_email", "fr-CA")
    assert (canadian.language, canadian.kind) == ("fr", EmailKind.CONFIRM_EMAIL)


@pytest.mark.parametrize("language", ["", "english!", "12", "e"])
def test_load_refuses_implausible_language_codes(session: Session, language: str) -> None:
    with pytest.raises(InvalidInput, match="not a language code"):
        load_email_template(session, 1, EmailKind.ACCEPT_INVITATION, language)


def test_html_is_escaped_but_subject_and_text_are_not() -> None:
    template = custom(
        '<p>Hi {{ record.first_name }}</p><a href="{{ invite_url }}">Go</a>',
        subject="For {{ record.first_name }}",
        text="Hi {{ record.first_name }} {{ invite_url }}",
    )
    rendered = template.render(context(first_name="<script>alert(1)</script>"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert rendered.subject == "For <script>alert(1)</script>"
    assert rendered.text.startswith("Hi <script>alert(1)</script> ")


def test_missing_merge_fields_render_empty() -> None:
    template = custom(
        "[{{ record.customer_tier }}][{{ record.account.owner.name }}][{{ record.phone }}]"
    )
    assert template.render(context(phone=None)).html == "[][][]"


def test_extra_record_fields_are_merge_fields() -> None:
    template = custom("{{ record.customer_tier }}", subject="{{ record['Account Name'] }}")
    rendered = template.render(context(customer_tier="Gold", **{"Account Name": "Zylker Inc"}))
    assert (rendered.html, rendered.subject) == ("Gold", "Zylker Inc")


def test_subject_is_one_line_even_with_multiline_values() -> None:
    rendered = custom("x", subject="Hi {{ record.first_name }}!").render(
        context(first_name="Sage\r\nBcc: victim@example.org")
    )
    assert rendered.subject == "Hi Sage Bcc: victim@example.org!"


@pytest.mark.parametrize(
    "source",
    [
        "{{ record|attr('__class__') }}",
        "{% set n = '__cla' ~ 'ss__' %}{{ record[n] }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ record.update({'email': 'x'}) }}",
    ],
)
def test_sandbox_refuses_at_render_time(source: str) -> None:
    with pytest.raises(SecurityError):
        custom(source).render(context())


def test_custom_text_is_derived_from_html() -> None:
    rendered = custom(
        '<p>Hi {{ record.first_name }},</p><p><a href="{{ invite_url }}">Accept</a></p>'
    ).render(context())
    assert rendered.text == f"Hi Sage,\n\nAccept ({LINK})\n"


def test_html_to_text() -> None:
    html = (
        "<html><head><title>T</title><style>p { color: red; }</style></head><body>"
        "<h1>Welcome  to\n  Zylker</h1><p>Tom &amp; Jerry&nbsp;&lt;3 &#8212; ok<br>next line</p>"
        "<ul><li>one</li><li>two</li></ul>"
        '<div><a href="https://x.example/a?b=1&amp;c=2">the portal</a> or '
        '<a href="https://x.example/">https://x.example/</a> '
        '<a href="#top">top</a> <a href="https://x.example/img"><img alt="" src="i.png"></a>'
        "</div><script>alert(1)</script></body></html>"
    )
    assert html_to_text(html) == (
        "Welcome to Zylker\n\n"
        "Tom & Jerry\xa0<3 — ok\nnext line\n\n"
        "- one\n- two\n\n"
        "the portal (https://x.example/a?b=1&c=2) or https://x.example/ top "
        "https://x.example/img\n"
    )


def test_render_context_is_plain_values(session: Session) -> None:
    org = make_org(session, name="Zylker")
    user_type = client_portal(session, org)
    assert org.portal is not None
    link = "http://localhost:8000/portal/zylker/confirm-email?token=t0k"
    ctx = render_context(
        record={"first_name": "Sage", "email": "s@example.org", "tier": None},
        org=org,
        portal=org.portal,
        user_type=user_type,
        inviter_name=None,
        link=link,
        kind=EmailKind.CONFIRM_EMAIL,
        expires_at=datetime(2030, 5, 6, 23, 30, tzinfo=UTC),
    )
    assert ctx == {
        "record": {"first_name": "Sage", "email": "s@example.org", "tier": ""},
        "portal": {"name": "Zylker", "url": "http://localhost:8000/portal/zylker"},
        "org": {"name": "Zylker"},
        "user_type": {"name": "Client Portal"},
        "inviter": {"name": ""},
        "link": link,
        "confirm_url": link,
        "expires_at": "May 6, 2030",
    }
    assert LINK_VARIABLE[EmailKind.CONFIRM_EMAIL] in ctx
