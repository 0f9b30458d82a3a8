"""Fault 7: a worker group is paused (SIGSTOP) past its claims' deadlines, then continued.

Two worker groups (one ``dramatiq`` process each) share a bulk invite. At 20% sent, one
group's whole process group is stopped midway through its claims, at a moment its
connections hold no open write transaction (else its row locks, the run's among them, would
hold recovery and the other group up). It stays stopped until recovery has handed every row
it had claimed to the other group (at least the lease plus a few scheduler periods), and is
then continued while the run still has work: a worker that was merely slow, not dead, wakes
up holding claims that are no longer its own and goes on working beside the group that took
them. From then on recovery is held, as between the real scheduler's passes minutes apart,
so whatever the woken group leaves behind is not tidied up before it can do harm.

Fencing keeps it from sending those rows: before each provider call a worker checks, on its
own clock, that its claim's deadline is still ahead by a safety margin, and otherwise gives
the rest of its batch back unsent. What can still go out twice is the message each paused
thread had in flight (taken by the provider before its receipt was kept, or finished when
the thread woke up): at most one per thread of the paused process. Without fencing the
woken threads send every unsent row of their claims again (at least ``UNSENT_AT_PAUSE``,
which the stop waits for; 26 to 378 duplicates in trials).

Each group links its invitations to a portal host of its own, so every message at the sink
tells which group sent it; a message whose token is no record's live one is the extra copy
of a duplicate (printed per group, before and after the pause).

Asserted: recovery took the paused group's unsent rows; zero lost; duplicates only for rows
that were claimed at the pause, and at most one per paused thread.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import message_from_bytes

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from portalflow.models import Invitation, InvitationStatus
from portalflow.pipelines.invitations import tokens

from ..smtp_server import Received
from . import fleet, tally
from .rig import Rig
from .world import World

# Enough that the other group, alone through the pause, is still busy when the paused one
# wakes up (it sends about 600 a second here).
RECORDS = 10_000
CHUNK_SIZE = 100
PROCESSES, THREADS = 1, 4  # per group; two groups
PAUSE_AFTER_SHARE = 0.2
LEASE_SECONDS = 4
CLAIM_MARGIN_SECONDS = 1
REPLAY_GRACE_SECONDS = 2
SCHEDULER_PERIOD_SECONDS = 1.0
# The pause outlasts the claims' deadlines by a few recovery passes at least.
PAUSE_AT_LEAST_SECONDS = LEASE_SECONDS + 3 * SCHEDULER_PERIOD_SECONDS
# A stop that catches the group inside a write transaction, or with fewer unsent rows under
# its claims than this, is undone and tried again: sending those rows again must show.
UNSENT_AT_PAUSE = 5 * PROCESSES * THREADS
PAUSE_TRIES = 100
# How long a stop waits for the statements its group had sent to end: a stop that is
# undone must stay far below the margin, or it would lapse claims itself.
SETTLE_SECONDS = 0.5
# After the pause, recovery is held this long at most (the run is left to finish without it).
HELD_SECONDS = 30.0
PAUSED, OTHER = "paused", "other"
SENDER = re.compile(r"https?://([a-z]+)\.portal\.test/")


def test_worker_paused_past_its_claims_sends_them_no_more(rig: Rig) -> None:
    seeded = rig.seed(RECORDS)

    def env(name: str) -> dict[str, str]:
        settings = rig.smtp_env(
            send_lease_seconds=LEASE_SECONDS,
            claim_margin_seconds=CLAIM_MARGIN_SECONDS,
            replay_grace_seconds=REPLAY_GRACE_SECONDS,
            portal_base_url=f"http://{name}.portal.test/portal",
        )
        return {**settings, "PGAPPNAME": name}  # libpq: its connections, by name

    with (
        fleet.group(env(PAUSED), rig.tmp_path / "paused.log", PROCESSES, THREADS) as victim,
        fleet.group(env(OTHER), rig.tmp_path / "other.log", PROCESSES, THREADS),
        rig.scheduler(
            SCHEDULER_PERIOD_SECONDS, lease=LEASE_SECONDS, grace=REPLAY_GRACE_SECONDS
        ) as replays,
    ):
        run_id = rig.start_run(CHUNK_SIZE)
        sent_at_pause = rig.wait_sent_share(run_id, PAUSE_AFTER_SHARE)
        requeued_before, completed_before = replays.requeued, replays.completed
        stop = _stop_holding_claims(victim, rig)
        try:
            paused_at = time.monotonic()
            fleet.wait_until(
                lambda: (
                    time.monotonic() - paused_at >= PAUSE_AT_LEAST_SECONDS
                    and _handed_over(rig.factory, stop.claims)
                ),
                "recovery handing every claim of the paused group to the other one",
            )
            paused_seconds = time.monotonic() - paused_at
            handed_over = replays.requeued - requeued_before
            completed_by_receipt = replays.completed - completed_before
            sent_at_resume = fleet.sent_so_far(rig.factory, run_id)
            finished_while_paused = rig.finished(run_id)
        finally:
            # The scheduler's next pass is minutes away: the woken group rejoins the run with
            # no recovery pass to tidy up after it (for as long as the run may take).
            replays.held = True
            victim.resume()
        resumed_at = time.monotonic()
        fleet.wait_until(
            lambda: rig.finished(run_id) or time.monotonic() - resumed_at > HELD_SECONDS,
            "the end of the run, or of the hold on recovery",
        )
        finished_without_recovery = rig.finished(run_id)
        replays.held = False
        rig.wait_finished(run_id)

    delivered, senders = _deliveries(rig.mail_sink.messages)
    with rig.factory() as session:
        result = rig.count(session, delivered)
        live = set(
            session.scalars(
                select(Invitation.token_hash).where(Invitation.status == InvitationStatus.SENT)
            )
        )
    stale = [
        (n, sender)
        for n, (message, sender) in enumerate(zip(delivered, senders, strict=True))
        if message.token is None or tokens.hash_token(message.token) not in live
    ]
    stale_after = Counter(sender for n, sender in stale if n >= stop.emails)
    at_pause = Counter(message.recipient for message in delivered[: stop.emails])
    claimed_at_pause = {crm_id for crm_id, _claim in stop.claims.values()}
    owner = {address: crm_id for crm_id, address in seeded.eligible.items()}
    rig.report(
        "worker paused",
        result,
        paused_threads=PROCESSES * THREADS,
        pause_tries=stop.tries,
        longest_undone_stop_seconds=stop.longest_undone,
        sent_at_pause=sent_at_pause,
        emails_at_pause=stop.emails,
        rows_claimed_at_pause=len(stop.claims),
        claims_of_paused_group=len(stop.held),
        their_rows_unsent=sum(stop.held.values()),
        paused_seconds=round(paused_seconds, 1),
        claims_handed_over=handed_over,
        claims_completed_by_receipt=completed_by_receipt,
        sent_at_resume=sent_at_resume,
        finished_without_recovery=finished_without_recovery,
        emails=len(delivered),
        emails_by_group=dict(Counter(senders)),
        # Taken before the pause, its receipt not yet kept: recovery had it sent again.
        duplicated_records_emailed_before_pause=sum(at_pause[a] > 0 for a in result.duplicates),
        stale_emails_before_pause=sum(n < stop.emails for n, _sender in stale),
        # In flight when the group stopped, or (without fencing) sent on a lapsed claim.
        stale_emails_of_paused_group_after_pause=stale_after[PAUSED],
        stale_emails_of_other_group_after_pause=stale_after[OTHER],
    )
    # The fault happened: the paused group's claims were taken from it, and it woke up to
    # a run still under way.
    assert handed_over >= sum(stop.held.values())
    assert not finished_while_paused, "the run ended during the pause: seed more records"
    tally.assert_each_got_one(result, seeded, may_repeat=claimed_at_pause)
    assert [a for a in result.duplicates if owner[a] not in claimed_at_pause] == []
    # At most the one message in flight in each paused thread.
    assert result.duplicate_count <= PROCESSES * THREADS


@dataclass(frozen=True)
class Stop:
    """The group stopped: after how many tries, and what the sink and the rows held then."""

    tries: int
    emails: int  # messages the sink had taken
    claims: dict[int, tuple[str, str | None]]  # every sending row: id -> (crm id, claim)
    held: dict[str, int]  # the paused group's claims midway -> how many rows not yet sent
    longest_undone: float  # seconds, the longest of the stops undone before this one


def _stop_holding_claims(victim: fleet.Group, rig: Rig) -> Stop:
    """Stop the group midway through its claims, holding no row lock nor uncommitted write.

    A group stopped inside a write transaction (a chunk's expansion, a batch's outcomes)
    holds row locks, the run's among them, that recovery and the other group wait on: the
    pause would stall the run instead of handing the claims over. One stopped between two
    chunks, or at their ends, holds too few unsent rows for their sending again to show.
    Either way it is continued at once and stopped again a moment later.
    """
    longest_undone = 0.0
    for attempt in range(1, PAUSE_TRIES + 1):
        stopped = time.monotonic()
        victim.pause()
        emails = len(rig.mail_sink.messages)
        if _between_transactions(rig.factory, PAUSED):
            with rig.factory() as session:
                claims = _claims(session)
            held = _claims_midway(claims, rig.mail_sink.messages[:emails], rig.world)
            if sum(held.values()) >= UNSENT_AT_PAUSE:
                return Stop(attempt, emails, claims, held, round(longest_undone, 2))
        victim.resume()
        longest_undone = max(longest_undone, time.monotonic() - stopped)
        time.sleep(0.05)
    raise AssertionError(f"no stop midway through a claim in {PAUSE_TRIES} tries")


def _between_transactions(factory: sessionmaker[Session], application_name: str) -> bool:
    """True once the named connections run no statement and none holds a transaction id."""
    query = text(
        "SELECT state, backend_xid IS NOT NULL AS writing FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = :name"
    )
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        with factory() as session:
            rows = session.execute(query, {"name": application_name}).all()
        if any(row.writing for row in rows):
            return False
        # A statement sent just before the stop still runs to its end on the server.
        if not any(row.state == "active" for row in rows):
            return True
        time.sleep(0.05)
    return False


def _claims(session: Session) -> dict[int, tuple[str, str | None]]:
    """Invitation id -> (crm id, claim token) of every row being sent right now."""
    rows = session.execute(
        select(Invitation.id, Invitation.crm_id, Invitation.claim_token).where(
            Invitation.status == InvitationStatus.SENDING
        )
    )
    return {row.id: (row.crm_id, row.claim_token) for row in rows}


def _claims_midway(
    claims: dict[int, tuple[str, str | None]], messages: Sequence[Received], seeded: World
) -> dict[str, int]:
    """The claims the paused group has sent some rows of, but not all: how many are left."""
    claim_of = {
        seeded.eligible[crm_id]: claim
        for crm_id, claim in claims.values()
        if crm_id in seeded.eligible
    }
    rows = Counter(claim_of.values())
    sent = Counter(
        claim_of[message.rcpt_tos[0]]
        for message in messages
        if message.rcpt_tos[0] in claim_of and _read(message)[1] == PAUSED
    )
    return {
        claim: rows[claim] - count
        for claim, count in sent.items()
        if claim is not None and count < rows[claim]
    }


def _handed_over(
    factory: sessionmaker[Session], claimed: dict[int, tuple[str, str | None]]
) -> bool:
    """True once none of ``claimed`` is still sending under the claim it had at the pause."""
    with factory() as session:
        now = _claims(session)
    return not any(row_id in now and now[row_id] == claim for row_id, claim in claimed.items())


def _deliveries(messages: Iterable[Received]) -> tuple[list[tally.Delivered], list[str | None]]:
    """Each message's recipient and token (as ``tally.email_deliveries``), and who sent it."""
    delivered, senders = [], []
    for message in messages:
        assert len(message.rcpt_tos) == 1, "one recipient per message: senders in step"
        token, sender = _read(message)
        delivered.append(tally.Delivered(message.rcpt_tos[0], token))
        senders.append(sender)
    return delivered, senders


def _read(message: Received) -> tuple[str | None, str | None]:
    """The invitation token a message carries, and which group sent it (its link's host).

    The ``compat32`` parser: the default policy's takes ten times as long (2 ms a message,
    20 s for this run's).
    """
    for part in message_from_bytes(message.content).walk():
        if part.get_content_maintype() != "text":
            continue
        body = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        token = tally.TOKEN.search(body)
        if token:
            host = SENDER.search(body)
            return token.group(1), host.group(1) if host else None
    return None, None
