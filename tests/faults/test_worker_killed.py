"""Fault 1: worker processes are SIGKILLed every two seconds during a bulk invite.

Two worker groups (one ``dramatiq`` process each) take turns being killed: once the next one
has worked ``KILL_EVERY_SECONDS`` since it was ready, its whole process group is SIGKILLed
and started again, while the other keeps working. The interval runs from readiness because
starting a worker (imports) takes about as long as that on this 2-core machine: a wall-clock
cadence would kill the workers before they do anything.

What a kill can duplicate: dispatch commits each message's provider receipt as soon as the
provider takes it, and recovery completes a dead claim that has one instead of sending it
again. Only a message taken in the moment before its receipt commits is sent twice; its row
was claimed again (``attempts`` > 1), and there is at most one per killed thread.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy import func, select

from portalflow.models import Invitation

from . import fleet, tally
from .rig import Rig

RECORDS = 5000
CHUNK_SIZE = 100
PROCESSES, THREADS = 1, 4  # per group; two groups
KILL_EVERY_SECONDS = 2.0
# A live batch holds its claim about 2 s at most here (measured under load), so only dead
# workers' claims expire.
LEASE_SECONDS = 8
REPLAY_GRACE_SECONDS = 2
SCHEDULER_PERIOD_SECONDS = 1.0
# Every kill costs the rows of each killed batch an attempt; at this kill rate the default
# of 5 could end a row as technical_failure without it ever being sent.
MAX_SEND_ATTEMPTS = 20


def test_workers_killed_every_two_seconds_lose_nothing(
    rig: Rig,
) -> None:
    seeded = rig.seed(RECORDS)
    env = rig.smtp_env(
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
        ) as replays,
    ):
        finished = partial(rig.finished, rig.start_run(CHUNK_SIZE))
        kills = fleet.kill_in_turns((first, second), finished, KILL_EVERY_SECONDS)

    delivered = rig.smtp_deliveries()
    with rig.factory() as session:
        result = rig.count(session, delivered)
        claimed_again = set(
            session.scalars(select(Invitation.crm_id).where(Invitation.attempts > 1))
        )
        most_attempts = session.scalar(select(func.max(Invitation.attempts)))
    owner = {address: crm_id for crm_id, address in seeded.eligible.items()}
    unexplained = [a for a in result.duplicates if owner[a] not in claimed_again]
    rig.report(
        "worker killed",
        result,
        kills=kills,
        emails=len(delivered),
        duplicate_bound=kills * PROCESSES * THREADS,
        dead_claims_completed_by_receipt=replays.completed,
        dead_claims_sent_again=replays.requeued,
        rows_claimed_again=len(claimed_again),
        most_attempts=most_attempts,
    )
    tally.assert_each_got_one(result, seeded, may_repeat=claimed_again)
    assert unexplained == []
    # At most the one message in flight in each killed thread.
    assert result.duplicate_count <= kills * PROCESSES * THREADS
