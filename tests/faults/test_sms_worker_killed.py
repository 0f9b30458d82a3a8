"""Fault 6: an SMS run under a SIGKILL storm; credits are charged for exactly what Twilio took.

An Indian org invites 2,500 field agents by SMS (a phone-preference user type, its DLT
templates approved, 100,000 credits) through the local Twilio server, which answers each
request after 5-20 ms so that kills land mid-send. Two worker groups (one ``dramatiq``
process of four threads each) take turns being SIGKILLed once they have worked two seconds
since they were ready, as in the email test, while the test plays the scheduler's recovery
job every second with an 8 s lease.

Before each provider call a worker debits the message's segments from the org and, in the
same transaction, writes the debit and the message's segments, encoding and DLT template on
the row; after the call it commits the provider's receipt. Recovery completes a dead claim
that has a receipt as sent (the org keeps paying for it; the row keeps its SMS figures). For
a debited one without, it asks Twilio (a ``Messages.json`` list by ``To`` and ``DateSent>``,
through the workers' own settings) for a message carrying the row's live link: found, the
row is completed as sent with that SID; not found, its debit is given back and it is sent
again. A provider refusal refunds at once.

Asserted, from the rows and from what the Twilio server created:

- zero lost: each eligible record has exactly one invitation, ``sent``, and the server took
  a message carrying its live link; refused records (recycle bin, landline) got none;
- duplicates only on re-claimed rows, at most one per killed thread (with Twilio asked,
  there should be none: a kill between Twilio's answer and the receipt is found by asking);
- every ``sent`` row has its segments, encoding and DLT template id, and its segments and
  encoding are those of the body the server took for its live token;
- the credits debited (100,000 minus the balance) equal the segments of every message the
  server took, counted by the app's GSM-7 / UCS-2 rule, a duplicate twice: the provider
  bills what it took. The figures printed beside it split the messages taken into those of
  the sent rows and the superseded copies (the first copy of each duplicate).
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, Org
from portalflow.pipelines.content.sms_text import sms_segments
from portalflow.pipelines.invitations import tokens

from ..twilio_server import running_twilio_server
from . import fleet, sms_world, tally
from .rig import Rig

RECORDS = 2500
CHUNK_SIZE = 100
PROCESSES, THREADS = 1, 4  # per group; two groups
KILL_EVERY_SECONDS = 2.0
# Twilio's round trip: long enough that a kill often lands between the request and its
# receipt, short enough for eight threads to finish the run in well under a minute.
TWILIO_LATENCY_SECONDS = (0.005, 0.02)
LEASE_SECONDS = 8
REPLAY_GRACE_SECONDS = 2
SCHEDULER_PERIOD_SECONDS = 1.0
# Every kill costs an attempt to each row the killed worker held claimed; at this kill rate
# the default of 5 could end a row as technical_failure (see test_worker_killed).
MAX_SEND_ATTEMPTS = 20


def test_sms_run_under_a_sigkill_storm_is_charged_what_twilio_took(rig: Rig) -> None:
    seeded = rig.seed(RECORDS, sms_world.seed)
    with running_twilio_server() as twilio:
        twilio.state.latency = TWILIO_LATENCY_SECONDS
        env = rig.worker_env(
            **sms_world.twilio_settings(twilio),
            send_lease_seconds=LEASE_SECONDS,
            replay_grace_seconds=REPLAY_GRACE_SECONDS,
            max_send_attempts=MAX_SEND_ATTEMPTS,
        )
        with (
            fleet.group(env, rig.tmp_path / "first.log", PROCESSES, THREADS) as first,
            fleet.group(env, rig.tmp_path / "second.log", PROCESSES, THREADS) as second,
            rig.scheduler(
                SCHEDULER_PERIOD_SECONDS,
                lease=LEASE_SECONDS,
                grace=REPLAY_GRACE_SECONDS,
                max_attempts=MAX_SEND_ATTEMPTS,
                env=env,
            ) as replays,
        ):
            finished = partial(rig.finished, rig.start_run(CHUNK_SIZE))
            kills = fleet.kill_in_turns((first, second), finished, KILL_EVERY_SECONDS)
        with twilio.state.lock:
            created = list(twilio.state.created)
            requests = len(twilio.state.requests)
            lookups = len(twilio.state.lookups)

    delivered = sms_world.deliveries(created)
    taken_segments = sum(sms_world.segments(m["body"]) for m in created)
    body_for = sms_world.bodies_by_token_hash(created)
    with rig.factory() as session:
        result = rig.count(session, delivered)
        claimed_again = set(
            session.scalars(select(Invitation.crm_id).where(Invitation.attempts > 1))
        )
        most_attempts = session.scalar(select(func.max(Invitation.attempts)))
        balance = session.get_one(Org, seeded.org_id).sms_credits
        sent = session.execute(
            select(
                Invitation.crm_id,
                Invitation.token_hash,
                Invitation.sms_segments,
                Invitation.sms_encoding,
                Invitation.dlt_template_id,
            ).where(Invitation.status == InvitationStatus.SENT)
        ).all()
        still_debited = _sum_if_column(session, "invitations", "sms_debited")
        receipts = _count_if_table(session, "send_receipts")
    debited = sms_world.CREDITS - balance
    # Messages the provider took that no sent row accounts for: the earlier copies of
    # duplicates (their token was replaced when the row was claimed again).
    live = {row.token_hash for row in sent}
    superseded = [m for m in created if _hash_of(m) not in live]
    missing_sms_fields = [
        row.crm_id
        for row in sent
        if None in (row.sms_segments, row.sms_encoding, row.dlt_template_id)
    ]
    other_template = [
        row.crm_id for row in sent if row.dlt_template_id not in (None, sms_world.DLT_INVITATION_ID)
    ]
    not_as_taken = [
        (row.crm_id, row.sms_encoding, row.sms_segments, sms_segments(body_for[row.token_hash]))
        for row in sent
        if row.sms_segments is not None
        and row.token_hash in body_for
        and (row.sms_encoding, row.sms_segments) != sms_segments(body_for[row.token_hash])
    ]
    owner = {phone: crm_id for crm_id, phone in seeded.eligible.items()}
    charged_apart = _charged_apart(created, owner, {r.crm_id: r.sms_segments or 0 for r in sent})
    unexplained = [a for a in result.duplicates if owner[a] not in claimed_again]
    rig.report(
        "SMS worker killed",
        result,
        kills=kills,
        twilio_requests=requests,
        twilio_messages_taken=len(created),
        segments_taken=taken_segments,
        segments_by_encoding=_by_encoding(created),
        credits_debited=debited,
        credits_of_sent_rows=sum(row.sms_segments or 0 for row in sent),
        segments_of_superseded_messages=sum(sms_world.segments(m["body"]) for m in superseded),
        sms_debited_left_on_rows=still_debited,
        records_taken_not_as_charged=len(charged_apart),
        send_receipts_left=receipts,
        sent_rows_missing_sms_fields=len(missing_sms_fields),
        duplicate_bound=kills * PROCESSES * THREADS,
        dead_claims_completed=replays.completed,
        of_them_found_at_twilio=replays.found_at_provider,
        twilio_lookups=lookups,
        dead_claims_sent_again=replays.requeued,
        rows_claimed_again=len(claimed_again),
        most_attempts=most_attempts,
    )
    tally.assert_each_got_one(result, seeded, may_repeat=claimed_again)
    assert unexplained == []
    # At most the one message in flight in each killed thread.
    assert result.duplicate_count <= kills * PROCESSES * THREADS
    assert missing_sms_fields == [], (
        f"{len(missing_sms_fields)} sent rows without segments, encoding or DLT template id, "
        f"e.g. {missing_sms_fields[:5]}"
    )
    assert other_template == []
    assert not_as_taken == []
    # Last: the provider bills every message it took, so the org pays for each one.
    assert debited == taken_segments, (
        f"{debited} credits debited for {taken_segments} segments Twilio took "
        f"({len(created)} messages; {len(superseded)} of them superseded copies of "
        f"{sum(sms_world.segments(m['body']) for m in superseded)} segments); "
        f"(record, segments taken, segments of its sent row): {charged_apart[:10]}"
    )


def _hash_of(message: dict[str, Any]) -> str | None:
    code = sms_world.link_code(str(message["body"]))
    return None if code is None else tokens.hash_token(code)


def _by_encoding(created: list[dict[str, Any]]) -> dict[str, int]:
    """Segments taken per encoding, e.g. {"gsm7": 2100, "ucs2": 1100}."""
    totals = Counter[str]()
    for message in created:
        encoding, count = sms_segments(str(message["body"]))
        totals[encoding.value] += count
    return dict(totals)


def _sum_if_column(session: Session, table: str, column: str) -> int | None:
    """A diagnostic figure that exists only in some schema versions: None where it does not."""
    columns = {c["name"] for c in inspect(session.get_bind()).get_columns(table)}
    if column not in columns:
        return None
    return int(session.scalar(text(f"SELECT coalesce(sum({column}), 0) FROM {table}")) or 0)


def _charged_apart(
    created: list[dict[str, Any]], owner: dict[str, str], charged: dict[str, int]
) -> list[tuple[str, int, int]]:
    """(crm id, segments the provider took for it, segments its sent row was charged).

    Only the records where the two differ: those the provider took more than one message for.
    """
    taken = Counter[str]()
    for message in created:
        taken[owner.get(message["to"], message["to"])] += sms_world.segments(message["body"])
    return sorted(
        (crm_id, segments, charged.get(crm_id, 0))
        for crm_id, segments in taken.items()
        if segments != charged.get(crm_id, 0)
    )


def _count_if_table(session: Session, table: str) -> int | None:
    if not inspect(session.get_bind()).has_table(table):
        return None
    return int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
