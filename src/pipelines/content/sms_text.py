"""SMS text rules, without a database: merge fields, links, DLT tags, matching, segments.

An org's SMS template is plain text with ``{{ name }}`` / ``{{ name.attr }}`` merge fields
and nothing else of Jinja, ending with "- Company name", its links only on the org's
short-link domain. A DLT template is the registered text with ``{#var#}`` (or typed)
variables. The two match when their literal text is equal piece by piece and each merge
field stands where a DLT variable stands. At send time ``sms_rendering`` fills the merge
fields and checks every value against its variable's type and length cap. With no loops or
expressions, a render takes time linear in its text, which is bounded: a template and a
rendered SMS have at most ``MAX_SMS_LENGTH`` characters (else ``TemplateTooLarge``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portalflow.models import SmsEncoding, SmsTemplateKind
from portalflow.pipelines.errors import InvalidInput

from .render_limits import MAX_SMS_LENGTH, TemplateTooLarge

# --- merge fields ---------------------------------------------------------------------

COMMON_VARIABLES: frozenset[str] = frozenset({"portal.name", "org.name"})
KIND_VARIABLES: dict[SmsTemplateKind, frozenset[str]] = {
    SmsTemplateKind.INVITATION: frozenset({"invite_url"}),
    SmsTemplateKind.VERIFICATION: frozenset({"code"}),
    SmsTemplateKind.FORGOT_PASSWORD: frozenset({"reset_url", "expiry_hours"}),
}
RECORD_PREFIX = "record."

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_OPENERS = re.compile(r"\{[{%#]")


@dataclass(frozen=True)
class MergeField:
    """One ``{{ ... }}`` of an SMS template: its dotted name and the text as written."""

    name: str
    source: str
    start: int


@dataclass(frozen=True)
class ParsedBody:
    """An SMS template split into literal text around its merge fields (one more literal)."""

    literals: tuple[str, ...]
    fields: tuple[MergeField, ...]


def parse_body(body: str) -> ParsedBody:
    """Split an SMS template; InvalidInput for any Jinja beyond plain ``{{ name.attr }}``."""
    literals: list[str] = []
    fields: list[MergeField] = []
    position = 0
    while (opener := _OPENERS.search(body, position)) is not None:
        start = opener.start()
        where = f"at character {start + 1}"
        if opener.group() == "{%":
            raise InvalidInput(
                f"control statements such as {{% if %}} are not allowed in an SMS template "
                f"({where}); use only merge fields like {{{{ record.first_name }}}}"
            )
        if opener.group() == "{#":
            raise InvalidInput(
                f"'{{#' is not allowed in an SMS template ({where}): DLT variables such as "
                "{#var#} belong in the DLT template; write a merge field like "
                "{{ record.first_name }} where the DLT template has a variable"
            )
        end = body.find("}}", start + 2)
        if end < 0:
            raise InvalidInput(f"the merge field opened with '{{{{' {where} is never closed")
        source = body[start : end + 2]
        inner = body[start + 2 : end].strip()
        if "{{" in inner:
            raise InvalidInput(f"the merge field opened with '{{{{' {where} is never closed")
        if not inner:
            raise InvalidInput(f"empty merge field {source} {where}")
        if "|" in inner:
            raise InvalidInput(
                f"filters are not allowed in an SMS template: {source} {where}; "
                "write a plain merge field such as {{ record.first_name }}"
            )
        if not _FIELD_NAME.fullmatch(inner):
            raise InvalidInput(
                f"{source} {where} is not a plain merge field: only {{{{ name }}}} or "
                "{{ name.attr }} are allowed (no expressions, calls, indexes or filters)"
            )
        literals.append(body[position:start])
        fields.append(MergeField(inner, source, start))
        position = end + 2
    literals.append(body[position:])
    return ParsedBody(tuple(literals), tuple(fields))


def allowed_variables(kind: SmsTemplateKind) -> frozenset[str]:
    """Names a template of ``kind`` may use, besides ``record.<field>``."""
    return COMMON_VARIABLES | KIND_VARIABLES[kind]


def validate_sms_template(
    body: str,
    kind: SmsTemplateKind,
    *,
    org_name: str,
    short_link_domain: str,
    dynamic_url_prefixes: Iterable[str] = (),
) -> ParsedBody:
    """Check every template rule; InvalidInput names each rule the text breaks."""
    if not body.strip():
        raise InvalidInput("the SMS template must not be empty")
    check_length(body, "the SMS template")
    parsed = parse_body(body)
    problems: list[str] = []

    allowed = allowed_variables(kind)
    unknown = [
        field.source
        for field in parsed.fields
        if field.name not in allowed
        and not (field.name.startswith(RECORD_PREFIX) and field.name.count(".") == 1)
    ]
    if unknown:
        names = ", ".join(["record.<field>", *sorted(allowed)])
        problems.append(
            f"unknown merge field(s) {', '.join(dict.fromkeys(unknown))}; "
            f"the {kind.value} template may use {names}"
        )

    suffix = f"- {org_name}"
    if not body.rstrip().endswith(suffix):
        problems.append(
            f'the SMS template must end with "{suffix}" (a dash, a space, the org name)'
        )

    for literal in parsed.literals:
        problems.extend(
            _link_problems(literal, short_link_domain.lower(), tuple(dynamic_url_prefixes))
        )

    if problems:
        raise InvalidInput("; ".join(dict.fromkeys(problems)))
    return parsed


# A link with a scheme, or a bare host name with a letters-only last label (in.zcrm.to/x).
_LINK = re.compile(
    r"https?://\S*"
    r"|(?<![\w@.\-/])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?![\w-])"
    r"(?::[0-9]+)?(?:[/?#]\S*)?",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!)]}'\""


def find_links(text: str) -> list[str]:
    """The literal links in ``text``, without trailing sentence punctuation."""
    return [match.group().rstrip(_TRAILING_PUNCTUATION) for match in _LINK.finditer(text)]


def _link_problems(literal: str, domain: str, prefixes: tuple[str, ...]) -> list[str]:
    problems = []
    for link in find_links(literal):
        bare = _SCHEME.sub("", link)
        host = re.split(r"[/?#]", bare, maxsplit=1)[0].rpartition("@")[2]
        host = host.split(":", 1)[0].lower()
        if not host:
            problems.append(
                f"the link {link!r} takes its domain from a merge field; a link must be on "
                f"the short-link domain {domain} of the org's data centre"
            )
        elif host != domain:
            problems.append(
                f"the link {link!r} is not on the short-link domain {domain} of the org's "
                "data centre"
            )
        if "?" in link and not any(
            bare.lower().startswith(_SCHEME.sub("", prefix).lower()) for prefix in prefixes
        ):
            problems.append(
                f"the link {link!r} has a '?' (a query string); only links starting with a "
                "configured dynamic URL prefix (PORTALFLOW_SMS_DYNAMIC_URL_PREFIXES) may"
            )
    return problems


# --- DLT content ----------------------------------------------------------------------

DLT_TAG_TYPES: frozenset[str] = frozenset(
    {"var", "numeric", "alphanumeric", "url", "urlott", "cbn", "email"}
)
DLT_TAG_ALIASES: dict[str, str] = {"number": "numeric"}
_DLT_TAG = re.compile(r"\{#(.*?)#\}", re.DOTALL)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class DltVariable:
    """One ``{#...#}`` of a DLT template: the tag as written and its type (aliases resolved)."""

    tag: str
    type: str

    @property
    def source(self) -> str:
        return f"{{#{self.tag}#}}"


@dataclass(frozen=True)
class ParsedDlt:
    literals: tuple[str, ...]
    variables: tuple[DltVariable, ...]


def normalise_dlt_content(raw: str) -> str:
    """DLT export text as sent: ``<br/>`` (any spelling) and CRLF become ``\\n``."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    return _LINE_BREAK.sub("\n", text).strip()


def parse_dlt_content(content: str) -> ParsedDlt:
    """Split DLT content around its variables; InvalidInput for an unknown ``{#tag#}``."""
    literals: list[str] = []
    variables: list[DltVariable] = []
    position = 0
    for match in _DLT_TAG.finditer(content):
        tag = match.group(1).strip().lower()
        kind = DLT_TAG_ALIASES.get(tag, tag)
        if kind not in DLT_TAG_TYPES:
            known = ", ".join(f"{{#{name}#}}" for name in sorted(DLT_TAG_TYPES | {"number"}))
            raise InvalidInput(f"unknown DLT variable {match.group()!r}; known: {known}")
        literals.append(content[position : match.start()])
        variables.append(DltVariable(tag, kind))
        position = match.end()
    rest = content[position:]
    if "{#" in rest:
        raise InvalidInput(
            f"a DLT variable opened with '{{#' at character {position + rest.index('{#') + 1} "
            "is never closed with '#}'"
        )
    literals.append(rest)
    return ParsedDlt(tuple(literals), tuple(variables))


# --- matching -------------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")
_EXCERPT_BEFORE = 12
_EXCERPT_AFTER = 28


@dataclass(frozen=True)
class _Slot:
    """A variable's place in a comparison; any slot matches any other slot."""

    label: str


def _normalise(literal: str, whitespace_tolerant: bool) -> str:
    return _WHITESPACE.sub(" ", literal).strip() if whitespace_tolerant else literal


def _units(literals: Sequence[str], labels: Sequence[str], tolerant: bool) -> list[str | _Slot]:
    units: list[str | _Slot] = []
    for index, literal in enumerate(literals):
        units.extend(_normalise(literal, tolerant))
        if index < len(labels):
            units.append(_Slot(labels[index]))
    return units


def _same(left: str | _Slot, right: str | _Slot) -> bool:
    if isinstance(left, _Slot) or isinstance(right, _Slot):
        return isinstance(left, _Slot) and isinstance(right, _Slot)
    return left == right


def _quoted(units: Sequence[str | _Slot]) -> str:
    text = "".join(unit.label if isinstance(unit, _Slot) else unit for unit in units)
    return '"' + text.replace("\n", "\\n").replace("\t", "\\t") + '"'


def _rest(units: Sequence[str | _Slot], first: int) -> str:
    if first >= len(units):
        return "nothing more"
    end = first + _EXCERPT_AFTER
    return _quoted(units[first:end]) + ("…" if end < len(units) else "")


def find_mismatch(body: ParsedBody, dlt: ParsedDlt, *, whitespace_tolerant: bool) -> str | None:
    """None when the SMS template matches the DLT template, else where they first differ."""
    crm = _units(body.literals, [field.source for field in body.fields], whitespace_tolerant)
    reg = _units(dlt.literals, [var.source for var in dlt.variables], whitespace_tolerant)
    counts_differ = len(body.fields) != len(dlt.variables)
    first = next(
        (index for index, pair in enumerate(zip(crm, reg, strict=False)) if not _same(*pair)),
        min(len(crm), len(reg)),
    )
    if first == len(crm) == len(reg) and not counts_differ:
        return None

    slots_before = sum(isinstance(unit, _Slot) for unit in crm[:first])
    if slots_before == 0:
        where = "in the text before the first merge field"
    else:
        after = body.fields[slots_before - 1].source
        where = f"in the text after merge field {slots_before} ({after})"
    start = max(0, first - _EXCERPT_BEFORE)
    shared = (
        f"after {'…' if start else ''}{_quoted(crm[start:first])}, "
        if first
        else "at the very start, "
    )
    detail = (
        f"they first differ {where}: {shared}the SMS template has {_rest(crm, first)} "
        f"where the DLT template has {_rest(reg, first)}"
    )
    if counts_differ:
        detail = (
            f"the SMS template has {len(body.fields)} merge field(s) and the DLT template "
            f"{len(dlt.variables)} variable(s); {detail}"
        )
    if not whitespace_tolerant and find_mismatch(body, dlt, whitespace_tolerant=True) is None:
        detail += " (only whitespace differs: an org set to whitespace-tolerant matching allows it)"
    return detail


def check_length(text: str, what: str) -> None:
    """TemplateTooLarge when ``text`` is over ``MAX_SMS_LENGTH`` characters."""
    # Merge fields are plain lookups, so the time to render is linear in this length.
    if len(text) > MAX_SMS_LENGTH:
        raise TemplateTooLarge(
            f"{what} is {len(text):,} characters; an SMS has at most {MAX_SMS_LENGTH:,}"
        )


# --- segments -------------------------------------------------------------------------

# GSM 03.38: the basic table (without the escape code) and the extension table, whose
# characters take an escape plus a code, two units.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
SEGMENT_LIMITS: dict[SmsEncoding, tuple[int, int]] = {
    SmsEncoding.GSM7: (160, 153),
    SmsEncoding.UCS2: (70, 67),
}


def sms_segments(text: str) -> tuple[SmsEncoding, int]:
    """The encoding an SMS needs and how many parts it is sent in (0 for empty text)."""
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        encoding = SmsEncoding.GSM7
        sizes = [2 if char in GSM7_EXTENSION else 1 for char in text]
    else:
        encoding = SmsEncoding.UCS2
        # UTF-16 code units: a character beyond the BMP is a surrogate pair.
        sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    single, part = SEGMENT_LIMITS[encoding]
    total = sum(sizes)
    if total == 0:
        return encoding, 0
    if total <= single:
        return encoding, 1
    # An escape pair or a surrogate pair is never split across two parts.
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return encoding, segments
