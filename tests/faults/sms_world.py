"""The SMS fault tests' world: an Indian org inviting field agents by SMS through Twilio.

One org registered in India with the ``jio-approved.csv`` DLT export imported and all three
SMS templates approved against it, a sender id, plenty of credits, and a phone-preference
user type over thousands of Vendors records with valid Indian mobile numbers. The names
vary so that the messages do not all cost the same: most are GSM-7 in one segment, some are
Devanagari (UCS-2, two segments) and a few are long Devanagari names (three segments).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert

from portalflow.models import CrmRecord, SmsTemplateKind, make_engine, make_session_factory
from portalflow.pipelines.content.sms_text import sms_segments
from portalflow.pipelines.delivery import credits
from portalflow.pipelines.invitations import tokens
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.tenancy import orgs

from ..factories import SMS_BODIES, approve_sms_template, make_inviter, make_sms_org
from ..twilio_server import TwilioServer
from . import tally
from .world import World

CREDITS = 100_000
SENDER_ID = "ZYLKER"
DLT_INVITATION_ID = SMS_BODIES[SmsTemplateKind.INVITATION][1]
MODULE = "Vendors"
# Every this-many-th record sits in the recycle bin, and another one has a landline:
# both are refused, so they must get no SMS and cost no credit.
INELIGIBLE_EVERY = 100
UCS2_EVERY = 5  # Devanagari first name: UCS-2, two segments
LONG_UCS2_EVERY = 50  # a 30-character Devanagari name, the DLT cap: three segments
SHORT_HINDI_NAME = "अर्जुन"
LONG_HINDI_NAME = "अर्जुन कुमार शर्मा वर्मा गुप्त"
# The invitation link in a sent body: its code is the invitation token.
LINK_CODE = re.compile(r"https://[a-z0-9.-]+\.zcrm\.to/([A-Za-z0-9]+)")


def mobile(n: int) -> str:
    """Record ``n``'s number as a CRM user types it."""
    return f"+91 98{n:08d}"


def e164(n: int) -> str:
    """Record ``n``'s number as the app stores and sends it."""
    return f"+9198{n:08d}"


def first_name(n: int) -> str:
    if n % LONG_UCS2_EVERY == LONG_UCS2_EVERY // 2:
        return LONG_HINDI_NAME
    if n % UCS2_EVERY == 1:
        return SHORT_HINDI_NAME
    return "Sage"


def seed(database_url: str, records: int) -> World:
    """An SMS-ready org with ``records`` agents, inserted in one statement; the World."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            org = make_sms_org(session)
            for kind in SmsTemplateKind:
                approve_sms_template(session, org, kind)
            orgs.configure_sms(session, org.id, sender_id=SENDER_ID)
            credits.add(session, org.id, CREDITS)
            agents = purchases.add_user_type_with_licences(
                session,
                org.id,
                name="Agents",
                module=MODULE,
                invitation_preference="phone",
                licences=records,
            )
            inviter = make_inviter(session, org, modules=[MODULE], email="ops@zylker.com")
            rows = [_agent(n, org.id) for n in range(records)]
            session.execute(insert(CrmRecord), rows)
            eligible = {r["crm_id"]: e164(n) for n, r in enumerate(rows) if _eligible(n)}
            world = World(
                org_id=org.id,
                user_type_id=agents.id,
                inviter_id=inviter.id,
                eligible=eligible,
                ineligible={r["crm_id"]: r["phone"] for r in rows if r["crm_id"] not in eligible},
            )
            session.commit()
            return world
    finally:
        engine.dispose()


def twilio_settings(server: TwilioServer) -> dict[str, object]:
    """Worker settings for the Twilio channel to the local Twilio server."""
    return {
        "sms_channel": "twilio",
        "twilio_account_sid": server.state.account_sid,
        "twilio_auth_token": server.state.auth_token,
        "twilio_from": SENDER_ID,
        "twilio_api_base_url": server.base_url,
        "twilio_timeout": 10,
    }


def link_code(body: str) -> str | None:
    match = LINK_CODE.search(body)
    return match.group(1) if match else None


def deliveries(created: Iterable[Mapping[str, Any]]) -> list[tally.Delivered]:
    """One Delivered per Message the Twilio server created, the token read from its link."""
    return [tally.Delivered(m["to"], link_code(m["body"])) for m in created]


def segments(body: str) -> int:
    """What the provider bills for ``body``: its GSM-7 / UCS-2 segments, by the app's rule."""
    return sms_segments(body)[1]


def bodies_by_token_hash(created: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The body the provider took for each token (its SHA-256, as the rows keep it)."""
    found = {}
    for message in created:
        code = link_code(message["body"])
        if code is not None:
            found[tokens.hash_token(code)] = message["body"]
    return found


def _eligible(n: int) -> bool:
    return n % INELIGIBLE_EVERY not in (INELIGIBLE_EVERY // 2 - 1, INELIGIBLE_EVERY - 1)


def _agent(n: int, org_id: int) -> dict[str, object]:
    landline = n % INELIGIBLE_EVERY == INELIGIBLE_EVERY // 2 - 1
    return {
        "org_id": org_id,
        "crm_id": f"A-{n:06d}",
        "module": MODULE,
        "first_name": first_name(n),
        "last_name": f"Agent {n}",
        "email": None,
        "phone": f"+91 80 2345 {n % 10_000:04d}" if landline else mobile(n),
        "approval_locked": False,
        "review_locked": False,
        "consent_given": False,
        "deleted": False,
        "in_recycle_bin": n % INELIGIBLE_EVERY == INELIGIBLE_EVERY - 1,
    }
