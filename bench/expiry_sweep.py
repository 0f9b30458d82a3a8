"""The expiry sweep over many invitations on PostgreSQL, with single dispatches running beside it.

Loads N invitations with one server-side ``INSERT ... SELECT generate_series(...)`` (the
plain indexes are dropped for the insert and built again after). Ids follow time over the
last 14 days, as they do in production: the older half was sent more than 7 days ago and
holds the M due rows (still ``sent``); the rest are accepted, superseded, failed, queued,
or sent and not yet due. ``--scattered`` shuffles the due rows' expiry times against
their ids, the worst case for the sweep's page accesses. Then it runs
``expiry.expire_invitations`` (what the scheduler's ``expire_invitations_sweep`` actor
calls) and prints its wall time, rows per transaction and longest transaction: no row
lock of the sweep is held longer, so no writer waits longer on one.

While the sweep runs, two threads each repeat what a single dispatch first does to one
invitation row, the real claim UPDATE (``dispatch.claim_due``), each in its own transaction,
rolled back so that it can be repeated: one on queued invitations that are not due, one
on due invitations picked at random (swept already, under the sweep's lock, or about to
be). The longest claim, lock wait included, is printed for each. (The claim matches only
``queued`` rows, and PostgreSQL skips a row that does not match without waiting for its
lock, so the second probe shows that the sweep cannot hold up a claim.)

    .venv/bin/python -m bench.expiry_sweep [--quick] [--invitations N --due M] [--scattered]

Run from the repository root; prints one line per figure, then a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, func, select, text

from bench.harness import temporary_database
from portalflow.models import Invitation, InvitationStatus, make_engine, make_session_factory
from portalflow.models import utcnow as now
from portalflow.pipelines.delivery.claims import DEFAULT_LEASE, Claim
from portalflow.pipelines.delivery.dispatch import claim_due
from portalflow.pipelines.invitations import expiry
from portalflow.pipelines.tenancy import orgs

FULL, FULL_DUE = 1_000_000, 200_000
QUICK, QUICK_DUE = 20_000, 4_000

# Run once, on the server. Ids follow time over the last 14 days: the older half was sent
# more than 7 days ago and holds the due rows (g % 100 < :due_pct, still 'sent'); the newer
# half is sent and not due, accepted, queued or failed. With :scattered the due rows'
# expiry times are shuffled against their ids (a sweep then visits pages out of order).
LOAD = """
INSERT INTO invitations (org_id, user_type_id, crm_id, kind, channel, language, address,
                         status, attempts, token_hash, sent_at, expires_at, created_at,
                         updated_at)
SELECT :org, :type, 'R' || g, 'accept_invitation', 'email', 'en',
       'user' || g || '@customer.example.org', s.status, 1,
       CASE WHEN s.status IN ('queued', 'failed') THEN NULL
            ELSE encode(sha256(int8send(g)), 'hex') END,
       CASE WHEN s.status IN ('queued', 'failed') THEN NULL ELSE s.sent_at END,
       CASE WHEN s.status IN ('queued', 'failed') THEN NULL
            ELSE s.sent_at + interval '7 days' END,
       s.sent_at, s.sent_at
FROM generate_series(1, :total) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g > :half
                    THEN now() - interval '167 hours'
                         + interval '167 hours' * ((g - :half)::float8 / (:total - :half))
                WHEN :scattered AND g % 100 < :due_pct
                    THEN now() - interval '7 days 1 hour'
                         - make_interval(mins => (g::int8 * 7919 % 10020)::int)
                ELSE now() - interval '14 days' + interval '167 hours' * (g::float8 / :half)
           END AS sent_at,
           CASE WHEN g <= :half THEN
                    CASE WHEN g % 100 < :due_pct THEN 'sent'
                         WHEN g % 10 < 6 THEN 'accepted'
                         WHEN g % 10 < 9 THEN 'superseded'
                         ELSE 'failed' END
                WHEN g % 20 = 0 THEN 'queued'
                WHEN g % 20 = 1 THEN 'failed'
                WHEN g % 10 < 4 THEN 'accepted'
                ELSE 'sent' END AS status
) AS s
"""

# The invitations table's indexes that no constraint owns: (name, CREATE INDEX statement).
PLAIN_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
WHERE i.indrelid = 'invitations'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)
"""


@dataclass
class Probe:
    """Claims of one kind of row, repeated until told to stop; the longest one kept."""

    name: str
    ids: list[int]
    claims: int = 0
    claimed: int = 0
    longest: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, engine: Engine) -> None:
        factory = make_session_factory(engine)
        rng = random.Random(self.name)
        with factory() as session:
            while not self.stop.is_set():
                started = time.perf_counter()
                claim, deadline = Claim.begin(DEFAULT_LEASE)
                claimed = claim_due(session, [rng.choice(self.ids)], claim.token, deadline, now())
                self.longest = max(self.longest, time.perf_counter() - started)
                session.rollback()  # leave the row as it was, to claim it again
                self.claims += 1
                self.claimed += len(claimed)


@dataclass
class Transactions:
    """The longest transaction on an engine: its row locks are held that long at most."""

    longest: float = 0.0
    _started: dict[int, float] = field(default_factory=dict)

    def watch(self, engine: Engine) -> None:
        @event.listens_for(engine, "begin")
        def begin(connection: Any) -> None:
            self._started[id(connection)] = time.perf_counter()

        @event.listens_for(engine, "commit")
        def commit(connection: Any) -> None:
            started = self._started.pop(id(connection), None)
            if started is not None:
                self.longest = max(self.longest, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} / {QUICK_DUE:,}")
    parser.add_argument("--invitations", type=int, help=f"default {FULL:,}")
    parser.add_argument("--due", type=int, help=f"past expiry (default {FULL_DUE:,})")
    parser.add_argument(
        "--scattered", action="store_true", help="due rows' expiry uncorrelated with their ids"
    )
    args = parser.parse_args()
    total = args.invitations or (QUICK if args.quick else FULL)
    due = args.due or (QUICK_DUE if args.quick else FULL_DUE)
    if not 0 < due <= total // 2:
        parser.error("need 0 < due <= invitations / 2")
    due_pct = round(100 * due / (total // 2))

    with temporary_database() as url:
        load_seconds = load(url, total, due_pct, scattered=args.scattered)
        engine = make_engine(url)
        probe_engine = make_engine(url)
        load_average = os.getloadavg()[0]
        try:
            figures = sweep(engine, probe_engine, total)
        finally:
            engine.dispose()
            probe_engine.dispose()
    figures = {
        "python": platform.python_version(),
        "layout": "scattered" if args.scattered else "in id order",
        "load_average_at_start": round(load_average, 2),
        "load_s": round(load_seconds, 1),
        **figures,
    }
    for name, value in figures.items():
        print(f"{name:32} {value}")
    print(json.dumps(figures))


def load(url: str, total: int, due_pct: int, *, scattered: bool = False) -> float:
    """One org and ``total`` invitations, filled server-side; then VACUUM ANALYZE."""
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            org = orgs.create_org(session, name="Zylker", company_domain="zylker.com", country="US")
            user_type = next(t for t in org.user_types if t.is_client_portal)
            session.commit()
            org_id, type_id = org.id, user_type.id
        with engine.begin() as connection:
            # A bench loader may skip the foreign key triggers (superuser only): the rows
            # name one org and one type, which exist.
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            # Indexes are built once after the insert rather than row by row (those behind
            # the primary key and the unique constraint stay).
            indexes = connection.execute(text(PLAIN_INDEXES)).all()
            for name, _definition in indexes:
                connection.execute(text(f'DROP INDEX "{name}"'))
            connection.execute(
                text(LOAD),
                {
                    "org": org_id,
                    "type": type_id,
                    "total": total,
                    "half": total // 2,
                    "due_pct": due_pct,
                    "scattered": scattered,
                },
            )
            for _name, definition in indexes:
                connection.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE invitations"))
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    print(f"{'loaded':32} {total:,} invitations in {seconds:.1f} s")
    return seconds


def sweep(engine: Engine, probe_engine: Engine, total: int) -> dict[str, object]:
    """Run the sweep with the probes beside it, then once more (nothing left to do)."""
    factory = make_session_factory(engine)
    at = now()
    with factory() as session:
        due_ids = list(
            session.scalars(
                select(Invitation.id).where(
                    Invitation.status == InvitationStatus.SENT, Invitation.expires_at <= at
                )
            )
        )
        queued_ids = list(
            session.scalars(
                select(Invitation.id)
                .where(Invitation.status == InvitationStatus.QUEUED)
                .order_by(Invitation.id)
                .limit(100)
            )
        )
    probes = [Probe("unexpired", queued_ids), Probe("about_to_expire", due_ids)]
    threads = [threading.Thread(target=probe.run, args=(probe_engine,)) for probe in probes]
    transactions = Transactions()
    transactions.watch(engine)
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # the probes are claiming before the sweep begins
    with factory() as session:
        started = time.perf_counter()
        result = expiry.expire_invitations(session, at)
        seconds = time.perf_counter() - started
    for probe in probes:
        probe.stop.set()
    for thread in threads:
        thread.join()
    with factory() as session:
        started = time.perf_counter()
        rerun = expiry.expire_invitations(session, at)
        rerun_seconds = time.perf_counter() - started
        still_due = session.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.status == InvitationStatus.SENT, Invitation.expires_at <= at)
        )
    unexpired, about_to_expire = probes
    return {
        "invitations": total,
        "due": len(due_ids),
        "expired": result.expired,
        "left_due": still_due,
        "batch_size": expiry.DEFAULT_BATCH_SIZE,
        "workers": expiry.DEFAULT_WORKERS,
        "transactions": result.batches,
        "rows_per_transaction": round(result.expired / result.batches) if result.batches else 0,
        "sweep_s": round(seconds, 2),
        "longest_transaction_s": round(transactions.longest, 3),
        "rerun_s": round(rerun_seconds, 3),
        "rerun_expired": rerun.expired,
        "claims_unexpired": unexpired.claims,
        "claimed_unexpired": unexpired.claimed,
        "longest_claim_unexpired_s": round(unexpired.longest, 3),
        "claims_about_to_expire": about_to_expire.claims,
        "claimed_about_to_expire": about_to_expire.claimed,
        "longest_claim_about_to_expire_s": round(about_to_expire.longest, 3),
    }


if __name__ == "__main__":
    main()
