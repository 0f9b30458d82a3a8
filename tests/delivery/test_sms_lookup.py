"""Asking the SMS provider whether it took a message whose receipt died with its worker.

The lookups run against real parts (the Twilio SDK over HTTP to tests/twilio_server.py, a
folder for the outbox); recovery is driven with a worker "killed" (a BaseException raised
through dispatch) just after, or just before, Twilio took the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    Invitation,
    InvitationStatus,
    Org,
    SendReceipt,
    make_session_factory,
    utcnow,
)
from portalflow.pipelines.delivery import credits, dispatch, dispatch_config
from portalflow.pipelines.delivery.channels.aws_sms import AwsSmsChannel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.channels.rate_limit import LocalSendRate, Paced
from portalflow.pipelines.delivery.channels.sms_base import LookupUnavailable, OutgoingSms
from portalflow.pipelines.delivery.channels.sms_outbox import SmsOutboxChannel
from portalflow.pipelines.delivery.channels.twilio_sms import LOOKUP_LIMIT, TwilioSmsChannel
from portalflow.pipelines.invitations import tokens
from portalflow.pipelines.ops import lapsed_claims, recovery
from portalflow.workers import recovery_actors, runtime

from ..twilio_server import TwilioServer, running_twilio_server
from .test_sms_dispatch import MOBILE, add_agent, invite, sms_world

ACCOUNT_SID = "AC" + "3" * 32
AUTH_TOKEN = "lookup-token"
TO = "+919812345678"
CODE = "aB3dE5gH7j"
BODY = f"Dear Ada, join the Zylker portal: https://in.zcrm.to/{CODE} - Zylker"
CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")


def sms(to: str = TO, body: str = BODY) -> OutgoingSms:
    return OutgoingSms(1, to, body, "ZYLKER", None, "1207170000000000101")


def mentions_code(body: str) -> bool:
    return lapsed_claims.carries_token(tokens.hash_token(CODE))(body)


@pytest.fixture
def twilio_server() -> Iterator[TwilioServer]:
    with running_twilio_server(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


def twilio_channel(server: TwilioServer, timeout: float = 5) -> TwilioSmsChannel:
    return TwilioSmsChannel(
        ACCOUNT_SID, AUTH_TOKEN, from_="ZYLKER", timeout=timeout, api_base_url=server.base_url
    )


# --- the matcher ----------------------------------------------------------------------------


def test_the_matcher_knows_a_body_by_the_hash_of_its_link_code() -> None:
    matches = lapsed_claims.carries_token(tokens.hash_token(CODE))
    assert matches(BODY)
    assert not matches(BODY.replace(CODE, CODE[:-1] + "k"))
    assert not matches(f"Dear Ada, {CODE} - Zylker")  # the code, but not as a link
    assert matches(f"See https://in.zcrm.to/help or https://go.example.in/{CODE}")


# --- Twilio ---------------------------------------------------------------------------------


def test_twilio_finds_the_message_it_took(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server)
    since = utcnow() - timedelta(seconds=1)
    channel.send(sms(body="Dear Ada, another one: https://in.zcrm.to/zzzzzzzzzz - Zylker"))
    sid = channel.send(sms())
    channel.send(sms(to="+919812345679"))

    assert channel.find_sent(TO, since, mentions_code) == sid
    [lookup] = twilio_server.state.lookups
    assert lookup.form["To"] == TO
    assert lookup.form["DateSent>"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lookup.form["PageSize"] == str(LOOKUP_LIMIT)
    assert lookup.auth == (ACCOUNT_SID, AUTH_TOKEN)
    channel.close()


def test_twilio_holds_no_such_message(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server)
    since = utcnow() - timedelta(seconds=1)
    assert channel.find_sent(TO, since, mentions_code) is None  # nothing at all
    channel.send(sms(body="Dear Ada, https://in.zcrm.to/zzzzzzzzzz - Zylker"))
    assert channel.find_sent(TO, since, mentions_code) is None  # another attempt's link


def test_twilio_a_message_to_another_number_is_not_it(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server)
    since = utcnow() - timedelta(seconds=1)
    channel.send(sms(to="+919812345679"))
    assert channel.find_sent(TO, since, mentions_code) is None


def test_twilio_a_message_before_since_is_not_it(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server)
    channel.send(sms())
    # Twilio's filter is to the second: a since two seconds after the send excludes it.
    assert channel.find_sent(TO, utcnow() + timedelta(seconds=2), mentions_code) is None
    assert channel.find_sent(TO, utcnow() - timedelta(seconds=2), mentions_code) is not None


def test_twilio_reads_up_to_its_limit_and_no_further(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server)
    since = utcnow() - timedelta(seconds=1)
    sid = channel.send(sms())
    for n in range(LOOKUP_LIMIT - 1):  # newer, so the sought one is the last one read
        channel.send(sms(body=f"Dear Ada, https://in.zcrm.to/other{n:05d} - Zylker"))
    assert channel.find_sent(TO, since, mentions_code) == sid
    channel.send(sms(body="Dear Ada, https://in.zcrm.to/onetoomany - Zylker"))
    # More messages to the number than one lookup reads: it cannot say the one is not there.
    with pytest.raises(LookupUnavailable):
        channel.find_sent(TO, since, lambda body: False)
    assert len(twilio_server.state.lookups) == 2  # one request each


def test_twilio_server_pages_as_the_sdk_expects(twilio_server: TwilioServer) -> None:
    channel = twilio_channel(twilio_server)
    sids = [channel.send(sms()) for _ in range(5)]
    listed = channel.client.messages.list(to=TO, page_size=2)
    assert [m.sid for m in listed] == sids[::-1]  # newest first, over three pages
    assert [m.status for m in listed] == ["sent"] * 5 and listed[0].date_sent is not None
    assert [r.form.get("Page", "0") for r in twilio_server.state.lookups] == ["0", "1", "2"]


@pytest.mark.parametrize("status", [500, 503, 429, 401])
def test_twilio_an_error_answer_means_it_cannot_tell(
    twilio_server: TwilioServer, status: int
) -> None:
    twilio_server.state.list_error = (status, {"code": 20500, "message": "down", "status": status})
    channel = twilio_channel(twilio_server)
    with pytest.raises(LookupUnavailable) as raised:
        channel.find_sent(TO, utcnow(), mentions_code)
    assert str(status) in str(raised.value)
    assert TO not in str(raised.value)  # the number is never in the message


def test_twilio_no_answer_in_time_means_it_cannot_tell(twilio_server: TwilioServer) -> None:
    twilio_server.state.stall.add(TO)
    channel = twilio_channel(twilio_server, timeout=0.3)
    with pytest.raises(LookupUnavailable) as raised:
        channel.find_sent(TO, utcnow(), mentions_code)
    assert "Timeout" in str(raised.value) and TO not in str(raised.value)


def test_twilio_a_server_not_listening_means_it_cannot_tell() -> None:
    with running_twilio_server(ACCOUNT_SID, AUTH_TOKEN) as server:
        channel = twilio_channel(server, timeout=1)
    with pytest.raises(LookupUnavailable) as raised:
        channel.find_sent(TO, utcnow(), mentions_code)
    assert TO not in str(raised.value)


# --- outbox, AWS, the pacing wrapper --------------------------------------------------------


def test_outbox_finds_the_file_it_wrote(tmp_path: Path) -> None:
    channel = SmsOutboxChannel(tmp_path / "sms")
    since = utcnow() - timedelta(seconds=1)
    assert channel.find_sent(TO, since, mentions_code) is None  # not even a folder yet
    channel.send(sms(to="+919812345679"))
    assert channel.find_sent(TO, since, mentions_code) is None
    provider_id = channel.send(sms())
    assert channel.find_sent(TO, since, mentions_code) == provider_id
    assert channel.find_sent(TO, since, lambda body: False) is None
    assert channel.find_sent(TO, utcnow() + timedelta(seconds=5), mentions_code) is None


def test_outbox_unreadable_means_it_cannot_tell(tmp_path: Path) -> None:
    channel = SmsOutboxChannel(tmp_path / "sms")
    channel.send(sms())
    (tmp_path / "sms" / "broken.json").write_text("{not json")
    with pytest.raises(LookupUnavailable):
        channel.find_sent(TO, utcnow() - timedelta(seconds=5), lambda body: False)


def test_aws_cannot_be_asked() -> None:
    channel = AwsSmsChannel("ap-south-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(LookupUnavailable):
        channel.find_sent(TO, utcnow(), mentions_code)
    channel.close()


def test_a_paced_channel_passes_the_lookup_through(tmp_path: Path) -> None:
    inner = SmsOutboxChannel(tmp_path / "sms")
    provider_id = inner.send(sms())
    paced = Paced(inner, LocalSendRate(1))
    assert paced.find_sent(TO, utcnow() - timedelta(seconds=5), mentions_code) == provider_id


# --- recovery asks Twilio ---------------------------------------------------------------------


class Killed(BaseException):
    """The worker's death: nothing in dispatch catches it, so nothing after it runs."""


class DyingChannel:
    """Twilio, with the worker killed just after (or just before) the provider call."""

    def __init__(self, channel: TwilioSmsChannel, *, after_the_call: bool) -> None:
        self.channel = channel
        self.after_the_call = after_the_call
        self.name = channel.name

    def send(self, message: OutgoingSms) -> str:
        if self.after_the_call:
            self.channel.send(message)
        raise Killed

    def find_sent(self, to: str, since: datetime, matches: Callable[[str], bool]) -> str | None:
        raise AssertionError("recovery asks the live channel, not this one")

    def close(self) -> None:
        self.channel.close()


def die_while_sending(session: Session, ids: list[int], channel: DyingChannel) -> None:
    with pytest.raises(Killed):
        dispatch.dispatch(session, ids, channels=Channels(sms=lambda: channel), config=CONFIG)
    session.rollback()


def balance(session: Session, org: Org) -> int:
    session.refresh(org)
    return org.sms_credits


def test_recovery_completes_an_sms_twilio_took_and_requeues_one_it_did_not(
    session: Session, twilio_server: TwilioServer
) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 10)
    add_agent(session, org, "taken", MOBILE)
    add_agent(session, org, "lost", "+91 98123 45679")
    session.commit()
    _, ids = invite(session, org, agents, inviter, ["taken", "lost"])
    taken, lost = sorted(ids)

    die_while_sending(
        session, [taken], DyingChannel(twilio_channel(twilio_server), after_the_call=True)
    )
    die_while_sending(
        session, [lost], DyingChannel(twilio_channel(twilio_server), after_the_call=False)
    )
    assert balance(session, org) == 8  # one segment each, debited before the call
    [message] = twilio_server.state.created
    assert session.scalars(select(SendReceipt)).all() == []

    live = twilio_channel(twilio_server)
    found = recovery.recover(
        session, utcnow() + timedelta(minutes=9), max_attempts=5, sms_lookup=live.find_sent
    )
    session.commit()
    assert (found.completed, found.found_at_provider) == ([taken], [taken])
    assert found.released_claims == 1
    assert len(twilio_server.state.lookups) == 2

    sent = session.get_one(Invitation, taken)
    session.refresh(sent)
    assert (sent.status, sent.provider_message_id) == (InvitationStatus.SENT, message["sid"])
    assert (sent.sms_debited, sent.sms_segments) == (0, 1)
    assert sent.token_hash is not None and lapsed_claims.carries_token(sent.token_hash)(
        message["body"]
    )
    requeued = session.get_one(Invitation, lost)
    session.refresh(requeued)
    assert (requeued.status, requeued.sms_debited) == (InvitationStatus.QUEUED, 0)
    assert balance(session, org) == 9  # the found one stays paid for; the other's came back

    later = utcnow() + timedelta(minutes=10)
    again = dispatch.dispatch(
        session,
        ids,
        channels=Channels(sms=lambda: twilio_channel(twilio_server)),
        config=CONFIG,
        now=lambda: later,  # the requeued row is due from the recovery pass's time
    )
    assert (again.sent, again.skipped) == ([lost], [taken])
    assert [m["to"] for m in twilio_server.state.created] == ["+919812345678", "+919812345679"]
    assert balance(session, org) == 8  # debits == segments Twilio took
    live.close()


def taken_then_died(session: Session, twilio_server: TwilioServer) -> tuple[Org, list[int]]:
    """One SMS Twilio took, whose worker died before keeping its receipt; (org, ids)."""
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 10)
    add_agent(session, org, "taken", MOBILE)
    session.commit()
    _, ids = invite(session, org, agents, inviter, ["taken"])
    die_while_sending(
        session, ids, DyingChannel(twilio_channel(twilio_server), after_the_call=True)
    )
    return org, ids


def test_recovery_gives_the_debit_back_when_the_provider_cannot_tell(
    session: Session, twilio_server: TwilioServer
) -> None:
    org, _ids = taken_then_died(session, twilio_server)
    twilio_server.state.list_error = (503, {"code": 20503, "message": "down", "status": 503})

    live = twilio_channel(twilio_server)
    found = recovery.recover(
        session, utcnow() + timedelta(minutes=10), max_attempts=5, sms_lookup=live.find_sent
    )
    session.commit()
    # As without a lookup: the outcome is unknown, so the debit comes back and it goes again.
    assert (found.completed, found.released_claims) == ([], 1)
    assert balance(session, org) == 10
    live.close()


def test_recovery_leaves_lookups_over_its_bound_for_the_next_pass(
    session: Session, twilio_server: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 10)
    for n in range(3):
        add_agent(session, org, f"a{n}", f"+91 98123 4567{n}")
    session.commit()
    _, ids = invite(session, org, agents, inviter, ["a0", "a1", "a2"])
    for invitation_id in sorted(ids):  # three claims, each killed after Twilio took it
        die_while_sending(
            session,
            [invitation_id],
            DyingChannel(twilio_channel(twilio_server), after_the_call=True),
        )
    monkeypatch.setattr(lapsed_claims, "MAX_LOOKUPS", 2)

    live = twilio_channel(twilio_server)
    later = utcnow() + timedelta(minutes=10)
    first = recovery.recover(session, later, max_attempts=5, sms_lookup=live.find_sent)
    session.commit()
    assert (first.found_at_provider, first.released_claims) == (sorted(ids)[:2], 0)
    still = session.get_one(Invitation, sorted(ids)[2])
    session.refresh(still)
    assert (still.status, still.sms_debited) == (InvitationStatus.SENDING, 1)
    second = recovery.recover(session, later, max_attempts=5, sms_lookup=live.find_sent)
    session.commit()
    assert second.found_at_provider == sorted(ids)[2:]
    assert balance(session, org) == 7 and len(twilio_server.state.created) == 3
    live.close()


def test_the_recovery_actor_asks_the_configured_sms_channel(
    redis_broker: RedisBroker,
    worker_settings: Settings,
    pg_engine: Engine,
    twilio_server: TwilioServer,
) -> None:
    runtime.configure(
        replace(
            worker_settings,
            sms_channel="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from="ZYLKER",
            twilio_api_base_url=twilio_server.base_url,
        )
    )
    with make_session_factory(pg_engine)() as session:
        org, agents, inviter = sms_world(session)
        credits.add(session, org.id, 10)
        add_agent(session, org, "taken", MOBILE)
        session.commit()
        _, ids = invite(session, org, agents, inviter, ["taken"])
        die_while_sending(
            session, ids, DyingChannel(twilio_channel(twilio_server), after_the_call=True)
        )
        session.execute(  # its lease is over
            update(Invitation)
            .where(Invitation.id.in_(ids))
            .values(claim_deadline=utcnow() - timedelta(minutes=1))
        )
        session.commit()

        try:
            recovery_actors.recover_stuck_work.fn()
        finally:
            runtime.configure(worker_settings)

        assert len(twilio_server.state.lookups) == 1

        [message] = twilio_server.state.created
        invitation = session.get_one(Invitation, ids[0])
        session.refresh(invitation)
        assert (invitation.status, invitation.provider_message_id) == (
            InvitationStatus.SENT,
            message["sid"],
        )
        assert balance(session, org) == 9


def test_an_sms_found_on_its_last_attempt_is_sent_not_failed(
    session: Session, twilio_server: TwilioServer
) -> None:
    org, ids = taken_then_died(session, twilio_server)

    live = twilio_channel(twilio_server)
    found = recovery.recover(
        session, utcnow() + timedelta(minutes=10), max_attempts=1, sms_lookup=live.find_sent
    )
    session.commit()
    assert (found.completed, found.exhausted) == (ids, [])
    assert balance(session, org) == 9
    live.close()


def test_a_debited_sms_counts_as_tried_even_after_a_refused_one() -> None:
    def lapsed(invitation_id: int, debited: int) -> lapsed_claims._Lapsed:
        return lapsed_claims._Lapsed(
            invitation_id, 1, 1, debited, "claim", utcnow(), TO, "h", None, None
        )

    # 1 refused by the provider (debit noted, no receipt), 2 in flight, 3 never reached.
    rows = [lapsed(1, 1), lapsed(2, 1), lapsed(3, 0)]
    assert lapsed_claims._never_tried(rows) == {3}
