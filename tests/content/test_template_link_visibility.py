"""A template's portal link must be visible: an href in the HTML, text in the text part."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from portalflow.models import EmailKind, PortalUserType
from portalflow.pipelines.content.email_templates import save_custom_template, show_template
from portalflow.pipelines.content.html_text import html_to_text, visible_links
from portalflow.pipelines.content.rendering import build_context, load_email_template
from portalflow.pipelines.errors import InvalidInput

from ..factories import client_portal, make_org

LINK = '<a href="{{ invite_url }}">Join us</a>'
ACCEPT = EmailKind.ACCEPT_INVITATION


@pytest.fixture
def user_type(session: Session) -> PortalUserType:
    return client_portal(session, make_org(session))


def save(
    session: Session, user_type: PortalUserType, html_body: str, text_body: str | None = None
) -> None:
    save_custom_template(
        session,
        user_type.org_id,
        user_type.id,
        ACCEPT,
        "en",
        subject="Welcome to {{ portal.name }}",
        html_body=html_body,
        text_body=text_body,
    )


@pytest.mark.parametrize(
    "html_body",
    [
        f"<p>Hello</p><!-- {LINK} -->",
        f'<p>Hello</p><div style="display:none">{LINK}</div>',
        f'<p>Hello</p><div style="color:red; DISPLAY: None !important">{LINK}</div>',
        f'<p>Hello</p><span style="visibility:hidden">{LINK}</span>',
        f"<p>Hello</p><div hidden>{LINK}</div>",
        f'<p>Hello</p><p style="font-size:0px">{LINK}</p>',
        f'<p>Hello</p><font size="0">{LINK}</font>',
        f'<p>Hello</p><div style="mso-hide:all">{LINK}</div>',
        f'<p>Hello</p><div style="opacity:0">{LINK}</div>',
        f'<p>Hello</p><div style="max-height:0;overflow:hidden">{LINK}</div>',
        '<p>Hello</p><a style="display:none" href="{{ invite_url }}">Join</a>',
        f"<template>{LINK}</template><p>Hello</p>",
        # Only as text, never an href: a reader cannot click it in the HTML part.
        "<p>Hello, open {{ invite_url }}</p>",
        '<p>Hello</p><img src="x.png" alt="{{ invite_url }}">',
    ],
)
def test_a_link_only_hidden_or_commented_out_is_refused(
    session: Session, user_type: PortalUserType, html_body: str
) -> None:
    with pytest.raises(InvalidInput, match=r"as a visible link .* in its HTML body") as refused:
        save(session, user_type, html_body)
    assert "{{ invite_url }}" in str(refused.value)
    assert "use reset to restore the default" in str(refused.value)
    assert (
        show_template(session, user_type.org_id, user_type.id, ACCEPT, "en")["is_custom"] is False
    )


@pytest.mark.parametrize(
    "text_body",
    [
        "Join us: {# {{ invite_url }} #}",  # a template comment
        "Join us{% if false %}: {{ invite_url }}{% endif %}",  # never rendered
    ],
)
def test_a_text_part_without_the_visible_link_is_refused(
    session: Session, user_type: PortalUserType, text_body: str
) -> None:
    with pytest.raises(InvalidInput, match=r"portal link \{\{ invite_url \}\}"):
        save(session, user_type, f"<p>{LINK}</p>", text_body=text_body)


def test_the_text_part_made_from_the_html_carries_the_visible_link(
    session: Session, user_type: PortalUserType
) -> None:
    save(session, user_type, f'<p>{LINK}</p><p style="display:none">hidden words</p>')
    session.commit()
    link = "https://p.example/zylker/accept?token=T"
    context = build_context(
        record={"first_name": "Sage"},
        org_name="Zylker",
        portal_name="Zylker Portal",
        portal_url="https://p.example/zylker",
        user_type_name="Client Portal",
        inviter_name=None,
        link=link,
        kind=ACCEPT,
        expires_at=None,
    )
    rendered = load_email_template(session, user_type.id, ACCEPT, "en").render(context)
    assert rendered.text == f"Join us ({link})\n"


def test_a_visible_link_beside_a_hidden_one_is_accepted(
    session: Session, user_type: PortalUserType
) -> None:
    html = (
        '<div style="display:none">preview text</div>'
        '<td style="font-size:0"><div style="font-size:16px">'
        f"{LINK}</div></td><p hidden>{LINK}</p>"
    )
    save(session, user_type, html)
    session.commit()
    assert show_template(session, user_type.org_id, user_type.id, ACCEPT, "en")["is_custom"]


def test_visible_links_and_the_derived_text_leave_out_hidden_content() -> None:
    html = (
        '<p>Hello <span style="display:none">secret</span>Sage</p>'
        '<!-- <a href="https://x.example/c">c</a> -->'
        '<div style="visibility:hidden"><a href="https://x.example/h">h</a></div>'
        '<p style="display:none">gone<p>back <a href="https://x.example/v">here</a>'
    )
    assert visible_links(html) == ["https://x.example/v"]
    text = html_to_text(html)
    assert "secret" not in text and "gone" not in text and "x.example/h" not in text
    assert "Hello Sage" in text and "back here (https://x.example/v)" in text
