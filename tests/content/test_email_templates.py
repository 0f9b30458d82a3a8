"""Saving, refusing, showing and resetting an org's custom email templates."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import EmailKind, EmailTemplate, PortalUserType
from portalflow.pipelines.content.email_templates import (
    reset_template,
    save_custom_template,
    show_template,
)
from portalflow.pipelines.content.rendering import build_context, load_email_template
from portalflow.pipelines.errors import InvalidInput, NotFound

from ..factories import client_portal, make_org

HTML = '<p>Dear {{ record.first_name }},</p><p><a href="{{ invite_url }}">Join us</a></p>'
ACCEPT = EmailKind.ACCEPT_INVITATION


@pytest.fixture
def user_type(session: Session) -> PortalUserType:
    return client_portal(session, make_org(session))


def saved_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(EmailTemplate)) or 0


def sample_context(kind: EmailKind = ACCEPT) -> dict[str, object]:
    return build_context(
        record={"first_name": "Sage"},
        org_name="Zylker",
        portal_name="Zylker Portal",
        portal_url="https://p.example/zylker",
        user_type_name="Client Portal",
        inviter_name=None,
        link="https://p.example/zylker/accept?token=T",
        kind=kind,
        expires_at=None,
    )


def save(session: Session, user_type: PortalUserType, **overrides: object) -> EmailTemplate:
    values: dict[str, object] = {
        "kind": ACCEPT,
        "language": "en",
        "subject": "Welcome to {{ portal.name }}",
        "html_body": HTML,
    }
    values.update(overrides)
    return save_custom_template(session, user_type.org_id, user_type.id, **values)  # type: ignore[arg-type]


def test_saved_template_is_used_by_load(session: Session, user_type: PortalUserType) -> None:
    save(session, user_type, language="fr", subject="Bienvenue sur {{ portal.name }}")
    session.commit()
    template = load_email_template(session, user_type.id, ACCEPT, "fr")
    assert (template.is_custom, template.language) == (True, "fr")
    rendered = template.render(sample_context())
    assert rendered.subject == "Bienvenue sur Zylker Portal"
    assert rendered.text == "Dear Sage,\n\nJoin us (https://p.example/zylker/accept?token=T)\n"
    # Other languages and kinds keep their defaults.
    assert not load_email_template(session, user_type.id, ACCEPT, "en").is_custom
    assert not load_email_template(session, user_type.id, EmailKind.CONFIRM_EMAIL, "fr").is_custom


def test_save_again_updates_the_same_row(session: Session, user_type: PortalUserType) -> None:
    first = save(session, user_type, text_body="Go: {{ invite_url }}")
    second = save(session, user_type, subject="Second", kind="accept_invitation", language="EN")
    assert second.id == first.id and saved_count(session) == 1
    assert (second.subject, second.text_body) == ("Second", None)


def test_missing_link_is_refused_and_nothing_written(
    session: Session, user_type: PortalUserType
) -> None:
    with pytest.raises(InvalidInput) as refused:
        save(session, user_type, html_body="<p>Hello {{ record.first_name }}</p>")
    assert str(refused.value) == (
        "the accept_invitation template must contain the portal link {{ invite_url }} "
        "in its HTML body; use reset to restore the default"
    )
    assert saved_count(session) == 0


def test_link_is_required_in_a_given_text_body(session: Session, user_type: PortalUserType) -> None:
    with pytest.raises(InvalidInput, match="text body"):
        save(session, user_type, text_body="Hello, no link here")
    assert saved_count(session) == 0


def test_each_kind_needs_its_own_link(session: Session, user_type: PortalUserType) -> None:
    with pytest.raises(InvalidInput, match=r"\{\{ confirm_url \}\}"):
        save(session, user_type, kind=EmailKind.CONFIRM_EMAIL)
    confirm = '<a href="{{ confirm_url }}">Confirm Email</a>'
    assert save(session, user_type, kind=EmailKind.CONFIRM_EMAIL, html_body=confirm).id


def test_link_hidden_or_altered_is_refused(session: Session, user_type: PortalUserType) -> None:
    for html in ("{% if false %}{{ invite_url }}{% endif %}", "{{ invite_url[:10] }}"):
        with pytest.raises(InvalidInput, match="unchanged"):
            save(session, user_type, html_body=html)
    assert saved_count(session) == 0


@pytest.mark.parametrize(
    ("part", "source", "message"),
    [
        ("subject", "Welcome {{ portal.name", r"the subject .* syntax error on line 1"),
        ("html_body", HTML + "\n\n{% if record.x %}open", r"the HTML body .* on line 3"),
        ("text_body", "{{ invite_url }}\n{% endfor %}", r"the text body .* on line 2"),
    ],
)
def test_syntax_errors_name_the_part_and_line(
    session: Session, user_type: PortalUserType, part: str, source: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        save(session, user_type, **{part: source})
    assert saved_count(session) == 0


@pytest.mark.parametrize(
    "expression",
    [
        "{{ record.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ record['__class__'] }}",
        "{% if false %}{{ org.__init__.__globals__ }}{% endif %}",
        "{{ record|attr('__class__') }}",
        "{% set n = '__cla' ~ 'ss__' %}{{ record[n] }}",
    ],
)
def test_sandbox_escapes_are_refused(
    session: Session, user_type: PortalUserType, expression: str
) -> None:
    with pytest.raises(InvalidInput, match="not allowed"):
        save(session, user_type, html_body=HTML + expression)
    assert saved_count(session) == 0


def test_unknown_variables_and_failing_expressions_are_refused(
    session: Session, user_type: PortalUserType
) -> None:
    with pytest.raises(InvalidInput, match=r"unknown variable.*secret_key"):
        save(session, user_type, subject="{{ secret_key }}")
    with pytest.raises(InvalidInput, match="trial render"):
        save(session, user_type, html_body=HTML + "{{ 1 / 0 }}")
    # Unknown record fields are fine: the CRM may send any field.
    assert save(session, user_type, html_body=HTML + "{{ record.customer_tier }}").id


def test_bad_language_kind_and_empty_parts_are_refused(
    session: Session, user_type: PortalUserType
) -> None:
    with pytest.raises(InvalidInput, match="language 'pt' is not supported"):
        save(session, user_type, language="pt")
    with pytest.raises(InvalidInput, match="email kind"):
        save(session, user_type, kind="welcome")
    with pytest.raises(InvalidInput, match="subject must not be empty"):
        save(session, user_type, subject="  ")
    assert saved_count(session) == 0


def test_reset_restores_the_default(session: Session, user_type: PortalUserType) -> None:
    org_id = user_type.org_id
    save(session, user_type, language="ja", subject="Custom")
    assert show_template(session, org_id, user_type.id, ACCEPT, "ja")["is_custom"] is True
    assert reset_template(session, org_id, user_type.id, ACCEPT, "ja") is True
    assert reset_template(session, org_id, user_type.id, ACCEPT, "ja") is False
    shown = show_template(session, org_id, user_type.id, ACCEPT, "ja")
    assert (shown["is_custom"], shown["language"], shown["subject"]) == (
        False,
        "ja",
        "{{ portal.name }} への招待",
    )
    assert "{{ invite_url }}" in shown["html_body"] and "{{ invite_url }}" in shown["text_body"]
    assert not load_email_template(session, user_type.id, ACCEPT, "ja").is_custom
    assert saved_count(session) == 0


def test_show_returns_the_saved_template(session: Session, user_type: PortalUserType) -> None:
    save(session, user_type, text_body="Join: {{ invite_url }}")
    assert show_template(session, user_type.org_id, user_type.id, "accept_invitation", "en") == {
        "subject": "Welcome to {{ portal.name }}",
        "html_body": HTML,
        "text_body": "Join: {{ invite_url }}",
        "is_custom": True,
        "language": "en",
    }


def test_another_orgs_user_type_is_not_found(session: Session, user_type: PortalUserType) -> None:
    other = make_org(session, name="Acme", company_domain="acme.com")
    with pytest.raises(NotFound):
        save_custom_template(
            session, other.id, user_type.id, ACCEPT, "en", subject="x", html_body=HTML
        )
    with pytest.raises(NotFound):
        reset_template(session, other.id, user_type.id, ACCEPT, "en")
    with pytest.raises(NotFound):
        show_template(session, other.id, user_type.id, ACCEPT, "en")
    assert saved_count(session) == 0
