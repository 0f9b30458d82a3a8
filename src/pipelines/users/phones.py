"""Phone numbers for SMS invitations: Indian mobile numbers only, normalised to E.164."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from portalflow.models import ReasonCode

INDIA_REGION = "IN"
INDIA_CALLING_CODE = 91


@dataclass(frozen=True)
class PhoneVerdict:
    e164: str | None
    reason: ReasonCode | None = None
    detail: str | None = None


def indian_mobile(raw: str | None) -> PhoneVerdict:
    """E.164 for a valid Indian mobile number; otherwise the reason it cannot take an SMS.

    A number without a country code is read as Indian, as an Indian CRM user types it.
    """
    text = (raw or "").strip()
    if not text:
        return PhoneVerdict(None, ReasonCode.INVALID_PHONE, "the phone field is empty")
    try:
        number = phonenumbers.parse(text, INDIA_REGION)
    except NumberParseException as exc:
        return PhoneVerdict(
            None, ReasonCode.INVALID_PHONE, f"{text!r} is not a phone number: {exc}"
        )
    if not phonenumbers.is_valid_number(number):
        return PhoneVerdict(None, ReasonCode.INVALID_PHONE, f"{text!r} is not a valid number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.country_code != INDIA_CALLING_CODE:
        region = phonenumbers.region_code_for_number(number) or "another country"
        return PhoneVerdict(
            None, ReasonCode.UNSUPPORTED_COUNTRY, f"{e164} is a {region} number, not +91"
        )
    if phonenumbers.number_type(number) != PhoneNumberType.MOBILE:
        return PhoneVerdict(None, ReasonCode.INVALID_PHONE, f"{e164} is not a mobile number")
    return PhoneVerdict(e164)
