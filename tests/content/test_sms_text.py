"""SMS text rules without a database: template rules, DLT matching, send-time checks, segments."""

from __future__ import annotations

import pytest

from portalflow.models import SmsEncoding, SmsTemplateKind
from portalflow.pipelines.content.sms_rendering import DltMismatch, render_checked
from portalflow.pipelines.content.sms_text import (
    find_links,
    find_mismatch,
    normalise_dlt_content,
    parse_body,
    parse_dlt_content,
    sms_segments,
    validate_sms_template,
)
from portalflow.pipelines.errors import InvalidInput

INVITE = (
    "Dear {{ record.first_name }}, you are invited to the {{ portal.name }} portal. "
    "Accept within 7 days: {{ invite_url }} - Zylker"
)
INVITE_DLT = (
    "Dear {#var#}, you are invited to the {#var#} portal. Accept within 7 days: {#var#} - Zylker"
)
LIMITS = {"var": 30}


def validate(body: str, kind: SmsTemplateKind = SmsTemplateKind.INVITATION, **options: object):
    return validate_sms_template(
        body,
        kind,
        org_name="Zylker",
        short_link_domain="in.zcrm.to",
        **options,  # type: ignore[arg-type]
    )


def values(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "record": {"first_name": "Sage"},
        "portal": {"name": "Zylker Partners"},
        "org": {"name": "Zylker"},
        "invite_url": "https://in.zcrm.to/Ab3dE6gH9k",
    }
    base.update(overrides)
    return base


# --- template rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (SmsTemplateKind.INVITATION, INVITE),
        (SmsTemplateKind.VERIFICATION, "{{code}} is your {{ org.name }} code. - Zylker  \n"),
        (
            SmsTemplateKind.FORGOT_PASSWORD,
            "Reset: {{ reset_url }} within {{ expiry_hours }} hours, {{ record.crm_id }}. - Zylker",
        ),
        (SmsTemplateKind.INVITATION, "Join at in.zcrm.to/abc or https://in.zcrm.to/x. - Zylker"),
    ],
)
def test_valid_templates_pass(kind: SmsTemplateKind, body: str) -> None:
    parsed = validate(body, kind)
    assert len(parsed.literals) == len(parsed.fields) + 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("Dear {{ record.first_name }}, join: {{ invite_url }}", 'must end with "- Zylker"'),
        ("Join: {{ invite_url }} - Zylker Ltd", 'must end with "- Zylker"'),
        ("Join https://bit.ly/abc - Zylker", "not on the short-link domain in.zcrm.to"),
        ("Join us.zcrm.to/abc - Zylker", "'us.zcrm.to/abc' is not on the short-link domain"),
        ("Join https://in.zcrm.to/a?b=1 - Zylker", "has a '?'"),
        ("Join https://{{ org.name }}.com - Zylker", "takes its domain from a merge field"),
        (
            "Dear {{ record.first_name }}, code {{ code }} - Zylker",
            "unknown merge field(s) {{ code }}",
        ),
        ("Dear {{ record }} - Zylker", "unknown merge field(s) {{ record }}"),
        ("Hi {{ portal.url }} - Zylker", "unknown merge field(s) {{ portal.url }}"),
        ("{% if record.first_name %}Hi{% endif %} - Zylker", "control statements"),
        ("Hi {{ record.first_name | upper }} - Zylker", "filters are not allowed"),
        ("Hi {{ record.first_name + 'x' }} - Zylker", "is not a plain merge field"),
        ("Hi {{ record['first_name'] }} - Zylker", "is not a plain merge field"),
        ("Hi {{ a.b.c }} - Zylker", "is not a plain merge field"),
        ("Hi {{ record.first_name - Zylker", "never closed"),
        ("Hi {#var#} - Zylker", "DLT variables such as {#var#} belong in the DLT template"),
        ("   ", "must not be empty"),
    ],
)
def test_template_rules_refuse(body: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate(body)
    assert needle in str(refused.value)


def test_every_broken_rule_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate("Hi {{ nope }} at https://zylker.com/x - Acme")
    message = str(refused.value)
    assert "{{ nope }}" in message and "- Zylker" in message and "zylker.com/x" in message


def test_dynamic_url_prefix_may_carry_a_query() -> None:
    body = "Open https://in.zcrm.to/d/x?t=1 - Zylker"
    validate(body, dynamic_url_prefixes=("https://in.zcrm.to/d/",))
    with pytest.raises(InvalidInput, match=r"has a '\?'"):
        validate(body, dynamic_url_prefixes=("https://in.zcrm.to/other/",))


def test_find_links_sees_bare_domains_but_not_emails_or_numbers() -> None:
    text = "Visit in.zcrm.to/abc. Mail help@zylker.com, pay Rs.500 at 10.30 a.m. today"
    assert find_links(text) == ["in.zcrm.to/abc"]


def test_parse_body_keeps_literals_and_fields_in_order() -> None:
    parsed = parse_body("A {{x}} B {{ record.phone }}")
    assert parsed.literals == ("A ", " B ", "")
    assert [field.name for field in parsed.fields] == ["x", "record.phone"]


# --- DLT content and matching ---------------------------------------------------------


@pytest.mark.parametrize("br", ["<br/>", "<br>", "<br />", "<BR/>", "<Br >"])
def test_line_breaks_become_newlines(br: str) -> None:
    assert normalise_dlt_content(f"Dear {{#var#}},{br}welcome\r\n") == "Dear {#var#},\nwelcome"


def test_dlt_tags_are_typed_and_number_is_numeric() -> None:
    parsed = parse_dlt_content("{#number#} {#NUMERIC#} {#alphanumeric#} {#url#} {#urlott#} "
                               "{#cbn#} {#email#} {#var#}")  # fmt: skip
    assert [v.type for v in parsed.variables] == [
        "numeric", "numeric", "alphanumeric", "url", "urlott", "cbn", "email", "var",
    ]  # fmt: skip
    assert parsed.variables[0].source == "{#number#}"


def test_unknown_dlt_tag_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"unknown DLT variable '\{#date#\}'"):
        parse_dlt_content("Due on {#date#} - Zylker")


def test_matching_template_has_no_mismatch() -> None:
    assert find_mismatch(parse_body(INVITE), parse_dlt_content(INVITE_DLT),
                         whitespace_tolerant=False) is None  # fmt: skip


def test_mismatch_says_where_they_first_differ() -> None:
    dlt = parse_dlt_content(INVITE_DLT.replace("you are invited", "you were invited"))
    detail = find_mismatch(parse_body(INVITE), dlt, whitespace_tolerant=False)
    assert detail is not None
    assert "after merge field 1 ({{ record.first_name }})" in detail
    assert 'after "Dear {{ record.first_name }}, you "' in detail
    assert 'the SMS template has "are invited' in detail
    assert 'the DLT template has "were invited' in detail


def test_mismatch_in_variable_count() -> None:
    dlt = parse_dlt_content("Dear {#var#}, you are invited. - Zylker")
    detail = find_mismatch(parse_body(INVITE), dlt, whitespace_tolerant=False)
    assert detail is not None and "3 merge field(s) and the DLT template 1 variable(s)" in detail


def test_whitespace_only_difference_needs_tolerance() -> None:
    body = parse_body(INVITE.replace("portal. Accept", "portal.\n  Accept"))
    dlt = parse_dlt_content(INVITE_DLT)
    detail = find_mismatch(body, dlt, whitespace_tolerant=False)
    assert detail is not None and "only whitespace differs" in detail and "\\n" in detail
    assert find_mismatch(body, dlt, whitespace_tolerant=True) is None


# --- send-time check ------------------------------------------------------------------


def test_render_checked_fills_every_field() -> None:
    checked = render_checked(INVITE, INVITE_DLT, values(), whitespace_tolerant=False,
                             limits=LIMITS)  # fmt: skip
    assert checked.text == (
        "Dear Sage, you are invited to the Zylker Partners portal. Accept within 7 days: "
        "https://in.zcrm.to/Ab3dE6gH9k - Zylker"
    )
    assert (checked.encoding, checked.segments) == (SmsEncoding.GSM7, 1)


def test_missing_value_renders_empty_in_a_var() -> None:
    checked = render_checked(INVITE, INVITE_DLT, values(record={}), whitespace_tolerant=False,
                             limits=LIMITS)  # fmt: skip
    assert checked.text.startswith("Dear , you are invited")


def test_variable_over_the_cap_is_a_mismatch() -> None:
    with pytest.raises(DltMismatch) as refused:
        render_checked(INVITE, INVITE_DLT, values(portal={"name": "P" * 31}),
                       whitespace_tolerant=False, limits=LIMITS)  # fmt: skip
    assert refused.value.detail == (
        "variable 2 ({#var#}, from {{ portal.name }}) is 31 characters; the cap is 30"
    )


def test_typed_caps_come_from_limits() -> None:
    body, dlt = "Hi {{ portal.name }} - Zylker", "Hi {#alphanumeric#} - Zylker"
    name = "Zylker Partner Portal of India Ltd"  # 34 characters
    with pytest.raises(
        DltMismatch, match=r"\(\{#alphanumeric#\}, .*is 34 characters; the cap is 30"
    ):
        render_checked(body, dlt, values(portal={"name": name}), whitespace_tolerant=False,
                       limits=LIMITS)  # fmt: skip
    checked = render_checked(body, dlt, values(portal={"name": name}), whitespace_tolerant=False,
                             limits={"var": 30, "alphanumeric": 40})  # fmt: skip
    assert name in checked.text


def test_numeric_tag_given_letters_is_a_mismatch() -> None:
    body, dlt = "{{ code }} is your code. - Zylker", "{#numeric#} is your code. - Zylker"
    with pytest.raises(DltMismatch) as refused:
        render_checked(body, dlt, {"code": "49A817"}, whitespace_tolerant=False, limits=LIMITS)
    assert refused.value.detail == (
        "variable 1 ({#numeric#}, from {{ code }}) must be digits only; character 3 is 'A'"
    )
    number_dlt = dlt.replace("numeric", "number")
    assert render_checked(body, number_dlt, {"code": 493817}, whitespace_tolerant=False,
                          limits=LIMITS).text.startswith("493817 ")  # fmt: skip


@pytest.mark.parametrize(
    ("tag", "good", "bad"),
    [
        ("numeric", "0042", ""),
        ("alphanumeric", "नमस्ते Zylker & Co.", "Sage!"),
        ("url", "https://in.zcrm.to/Ab3dE6gH9k", "https://in.zcrm.to/a b"),
        ("urlott", "in.zcrm.to/x", "not a link"),
        ("cbn", "+918041234567", "12345"),
        ("email", "help@zylker.com", "help@zylker"),
        ("var", "anything at all: ₹100!", "two\nlines"),
    ],
)
def test_values_are_checked_against_their_tag_type(tag: str, good: str, bad: str) -> None:
    body, dlt = "Value {{ x }} - Zylker", f"Value {{#{tag}#}} - Zylker"
    render_checked(body, dlt, {"x": good}, whitespace_tolerant=False, limits=LIMITS)
    with pytest.raises(DltMismatch, match=rf"variable 1 \(\{{#{tag}#\}}, from \{{\{{ x \}}\}}\)"):
        render_checked(body, dlt, {"x": bad}, whitespace_tolerant=False, limits=LIMITS)


def test_text_that_no_longer_matches_its_dlt_template_is_a_mismatch() -> None:
    with pytest.raises(DltMismatch, match="does not match its DLT template: they first differ"):
        render_checked(INVITE, INVITE_DLT.replace("7 days", "3 days"), values(),
                       whitespace_tolerant=False, limits=LIMITS)  # fmt: skip


# --- segments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (SmsEncoding.GSM7, 0)),
        ("a" * 160, (SmsEncoding.GSM7, 1)),
        ("a" * 161, (SmsEncoding.GSM7, 2)),
        ("a" * 306, (SmsEncoding.GSM7, 2)),
        ("a" * 307, (SmsEncoding.GSM7, 3)),
        ("€" + "a" * 158, (SmsEncoding.GSM7, 1)),  # 160 units
        ("€" + "a" * 159, (SmsEncoding.GSM7, 2)),  # 161 units
        ("[]{}" + "a" * 152, (SmsEncoding.GSM7, 1)),
        # An escape pair never straddles two parts: 152 units, then the euro moves on.
        ("a" * 152 + "€" + "a" * 10, (SmsEncoding.GSM7, 2)),
        ("a" * 152 + "€" + "a" * 152, (SmsEncoding.GSM7, 3)),
        ("ç" + "a" * 10, (SmsEncoding.UCS2, 1)),
        ("न" * 70, (SmsEncoding.UCS2, 1)),
        ("न" * 71, (SmsEncoding.UCS2, 2)),
        ("न" * 134, (SmsEncoding.UCS2, 2)),
        ("न" * 135, (SmsEncoding.UCS2, 3)),
        ("🙂" * 35, (SmsEncoding.UCS2, 1)),
        ("🙂" * 36, (SmsEncoding.UCS2, 2)),
    ],
)
def test_segments(text: str, expected: tuple[SmsEncoding, int]) -> None:
    assert sms_segments(text) == expected


def test_hindi_invitation_is_ucs2() -> None:
    text = "प्रिय साधना, आपको ज़ायलकर पोर्टल पर आमंत्रित किया गया है - Zylker"
    encoding, segments = sms_segments(text)
    assert encoding == SmsEncoding.UCS2 and segments == 1
