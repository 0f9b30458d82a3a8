"""The raw MIME message: parts, encodings, headers and line endings, parsed back."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from portalflow.models import EmailKind
from portalflow.pipelines.content.message import BuiltMessage, build_message
from portalflow.pipelines.content.rendering import RenderedEmail, build_context, default_template
from portalflow.pipelines.errors import InvalidInput

TEXT = (
    "Hi Sage,\n\nFrom here you can join Zylker Portal — café.\n\nAccept: https://p.example/a?t=1\n"
)
HTML = '<p>Hi Sage,</p>\n<p><a href="https://p.example/a?t=1">Accept Invite</a> — café</p>\n'


def build(rendered: RenderedEmail | None = None, **overrides: Any) -> BuiltMessage:
    values: dict[str, Any] = {
        "rendered": rendered or RenderedEmail(subject="Welcome", html=HTML, text=TEXT),
        "from_address": "portal@zylker-support.com",
        "from_name": "Zylker",
        "reply_to": "help@zylker-support.com",
        "recipient": "sage@customer.example.org",
        "recipient_name": "Sage Weiser",
    }
    values.update(overrides)
    return build_message(**values)


def parse(built: BuiltMessage) -> EmailMessage:
    message = email.message_from_bytes(built.raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None
    # Text travels with CRLF line breaks; the rendered text had LF.
    return str(part.get_content()).replace("\r\n", "\n")


def assert_wire_format(raw: bytes, limit: int = 78) -> None:
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    assert max(len(line) for line in lines) <= limit
    assert raw.isascii()


def test_two_parts_decode_to_the_rendered_text() -> None:
    built = build()
    message = parse(built)
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert body(message, "plain") == TEXT
    assert body(message, "html") == HTML
    assert message["MIME-Version"] == "1.0"
    assert_wire_format(built.raw)


def test_body_lines_stay_short_and_from_lines_are_not_mangled() -> None:
    long_line = "word " * 200
    built = build(RenderedEmail(subject="s", html=long_line, text="From here on\n" + long_line))
    message = parse(built)
    assert body(message, "plain") == "From here on\n" + long_line
    assert body(message, "html") == long_line
    assert_wire_format(built.raw)


@pytest.mark.parametrize(
    "subject",
    [
        "Zylker Portal への招待 — パスワードを設定してサインインしてください。よろしくお願いします",
        "Zylker Portal में शामिल होने का निमंत्रण, कृपया सात दिनों के भीतर स्वीकार करें",
        "Invitation à rejoindre Zylker Portal",
        "A long ASCII subject " * 8,
    ],
)
def test_subjects_round_trip(subject: str) -> None:
    built = build(RenderedEmail(subject=subject.strip(), html=HTML, text=TEXT))
    assert parse(built)["Subject"] == subject.strip()
    assert_wire_format(built.raw)


@pytest.mark.parametrize("language", ["ja", "hi"])
def test_default_templates_in_non_latin_scripts_round_trip(language: str) -> None:
    context = build_context(
        record={"first_name": "सेज", "last_name": "山田"},
        org_name="Zylker",
        portal_name="Zylker Portal",
        portal_url="https://p.example/zylker",
        user_type_name="Client Portal",
        inviter_name="Russell Brown",
        link="https://p.example/zylker/accept?token=" + "x" * 43,
        kind=EmailKind.ACCEPT_INVITATION,
        expires_at=None,
    )
    rendered = default_template(EmailKind.ACCEPT_INVITATION, language).render(context)
    built = build(rendered, recipient_name="山田 सेज")
    message = parse(built)
    assert message["Subject"] == rendered.subject
    assert body(message, "plain") == rendered.text
    assert body(message, "html") == rendered.html
    assert message["To"].addresses[0].display_name == "山田 सेज"
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == "base64"
    assert_wire_format(built.raw)


def test_addresses_and_display_names() -> None:
    built = build(from_name="株式会社ジルカー, Support", recipient_name='Sage "S" Weiser, Jr.')
    message = parse(built)
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (
        "株式会社ジルカー, Support",
        "portal@zylker-support.com",
    )
    recipient = message["To"].addresses[0]
    assert (recipient.display_name, recipient.addr_spec) == (
        'Sage "S" Weiser, Jr.',
        "sage@customer.example.org",
    )
    assert (built.envelope_from, built.recipient) == (
        "portal@zylker-support.com",
        "sage@customer.example.org",
    )
    assert parse(build(from_name=None, recipient_name=None))["To"] == "sage@customer.example.org"


def test_date_message_id_reply_to_and_extra_headers() -> None:
    built = build(headers={"X-Portalflow-Invitation": "42", "X-Tag": "café"})
    message = parse(built)
    assert message["Message-ID"] == built.message_id
    assert built.message_id.startswith("<") and built.message_id.endswith("@zylker-support.com>")
    assert build().message_id != built.message_id
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Reply-To"] == "help@zylker-support.com"
    assert (message["X-Portalflow-Invitation"], message["X-Tag"]) == ("42", "café")
    assert "Reply-To" not in parse(build(reply_to=None))
    other = build(message_id_domain="mail.zylker.com")
    assert other.message_id.endswith("@mail.zylker.com>")


@pytest.mark.parametrize(
    "overrides",
    [
        {"headers": {"X-Evil": "a\r\nBcc: victim@example.org"}},
        {"headers": {"Bad Name": "x"}},
        {"headers": {"subject": "second subject"}},
        {"from_name": "Zylker\nBcc: victim@example.org"},
        {"recipient": "Sage <sage@example.org>"},
        {"message_id_domain": "bad domain>"},
    ],
)
def test_header_injection_and_bad_values_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        build(**overrides)
