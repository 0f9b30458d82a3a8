"""Email address rules: the spec's allowed characters, syntax, and domain matching."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from email_validator import EmailNotValidError, validate_email

from portalflow.models import ReasonCode
from portalflow.pipelines.errors import InvalidInput

# The spec allows exactly these characters in an invitation address.
_ALLOWED_EMAIL = re.compile(r"[A-Za-z0-9@._+\-]+")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def has_only_allowed_characters(address: str) -> bool:
    return _ALLOWED_EMAIL.fullmatch(address) is not None


def is_well_formed(address: str) -> bool:
    """RFC syntax (no DNS lookup): one '@', a real domain, no dots out of place.

    The common case, a dot-atom local part of plain characters, is checked here and its
    domain by email-validator once per domain; anything else goes to email-validator whole.
    Either way the verdict is email-validator's (a test holds the two paths equal).
    """
    local, _at, domain = address.rpartition("@")
    if (
        len(address) <= _MAX_ADDRESS
        and len(local) <= _MAX_LOCAL_PART
        and _PLAIN_LOCAL_PART.fullmatch(local)
    ):
        return _domain_is_valid(domain)
    return _validates(address)


# Lengths email-validator enforces (RFC 5321 4.5.3.1); the plain-local-part shortcut keeps them.
_MAX_ADDRESS, _MAX_LOCAL_PART = 254, 64
_PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*")


@lru_cache(maxsize=8192)
def email_problem(address: str) -> tuple[ReasonCode, str] | None:
    """Why an email address cannot be used, with one code whichever flow checks it."""
    if not has_only_allowed_characters(address):
        return ReasonCode.UNSUPPORTED_CHARACTERS, "only A-Z a-z 0-9 and @ . - _ + are allowed"
    if not is_well_formed(address):
        return ReasonCode.INVALID_ADDRESS, "not a valid email address"
    return None


def _domain_is_valid(domain: str) -> bool:
    return _validates(f"a@{domain}")


def _validates(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def normalise_domain(domain: str) -> str:
    """A lower-case DNS domain, or a clear error."""
    value = domain.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(value):
        raise InvalidInput(f"{domain!r} is not a valid domain name (e.g. zylker.com)")
    return value


def validate_sender_address(address: str, label: str) -> str:
    """A From / Reply-To style address, normalised; raises InvalidInput naming the field."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"{label} address {address!r} is not valid: {exc}") from None


def is_within(domain: str, parents: Iterable[str]) -> bool:
    """True when ``domain`` is one of ``parents`` or a sub-domain of one."""
    parents = set(parents)
    labels = domain.lower().split(".")
    return any(".".join(labels[i:]) in parents for i in range(len(labels)))


def is_disposable(domain: str, extra: Iterable[str] = ()) -> bool:
    """An anonymous / disposable / spam domain, sub-domains included."""
    labels = domain.lower().split(".")
    extra = set(extra)
    for i in range(len(labels) - 1):
        suffix = ".".join(labels[i:])
        if suffix in DISPOSABLE_DOMAINS or suffix in extra:
            return True
    return False
