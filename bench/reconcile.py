"""Nightly licence reconciliation over many portal users on PostgreSQL: wall time and memory.

Loads N portal users across M orgs (each org: a Client Portal and two paid types with
purchases; a tenth of the users deactivated, a twenty-fifth removed; every cached counter
wrong) with a few server-side ``INSERT ... SELECT generate_series(...)`` statements (the
plain indexes of the two big tables are dropped for the insert and built once after), then
times ``reconcile`` for one day (which corrects every counter) and once more (the idempotent
rerun). Peak memory is this process's ``ru_maxrss``; PostgreSQL's own memory is not counted.

Sizes: ``--scale quick`` (20,000 users, 20 orgs), ``1x`` (1,000,000 / 1,000, the default),
``10x`` (10,000,000 / 10,000; the load alone takes a minute or more and a few GB of disk),
or any ``--users N --orgs M``.

The database: ``PORTALFLOW_BENCH_DATABASE_URL`` (an empty database; it is migrated and
filled, not emptied), else a throwaway ``portalflow_bench_<pid>`` created on
127.0.0.1:5432 as user postgres and dropped at the end.

Prints one line per figure, then a one-line JSON summary.

    .venv/bin/python bench/reconcile.py [--scale quick|1x|10x] [--users N --orgs M]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import create_engine, func, select, text

from portalflow.models import LicenceReport, Org, make_engine, make_session_factory
from portalflow.models.schema import upgrade
from portalflow.pipelines.licensing.reconciliation import reconcile

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DAY = date(2026, 11, 23)
# Named sizes: (portal users, orgs).
SCALES = {"quick": (20_000, 20), "1x": (1_000_000, 1_000), "10x": (10_000_000, 10_000)}
LOADED_TABLES = ("crm_records", "portal_users")

# Each statement runs once, on the server; :users and :orgs are bound.
LOAD = (
    """
    INSERT INTO orgs (name, company_domain, edition, data_centre, country, near_limit_percent,
                      created_at)
    SELECT 'Org ' || g, 'org' || g || '.example.com', 'enterprise', 'us', 'US', 90,
           now() - interval '1 year'
    FROM generate_series(1, :orgs) AS g
    """,
    """
    INSERT INTO portal_user_types (org_id, name, module, invitation_preference,
                                   invitation_field, is_client_portal, enabled, holders_cached,
                                   created_at)
    SELECT o.id, k.name, k.module, 'email', 'email', k.module = 'Contacts', true, 7, now()
    FROM orgs AS o
    CROSS JOIN (VALUES ('Client Portal', 'Contacts'), ('Vendors', 'Vendors'),
                       ('Leads', 'Leads')) AS k (name, module)
    """,
    # Licences around what each type holds: some orgs over, some near the limit, most not.
    """
    INSERT INTO licence_purchases (org_id, user_type_id, quantity, effective_from, created_at)
    SELECT t.org_id, t.id, (:users / :orgs / 3) * (80 + (t.id % 50)) / 100,
           DATE '2026-01-01', now()
    FROM portal_user_types AS t WHERE NOT t.is_client_portal
    """,
    # Users spread over the orgs (round robin), as invitations arrive over time.
    """
    INSERT INTO crm_records (org_id, crm_id, module, approval_locked, review_locked,
                             consent_given, in_recycle_bin, deleted, fields, updated_at)
    SELECT (g - 1) % :orgs + 1, 'R' || g,
           (ARRAY['Contacts', 'Vendors', 'Leads'])[(g / :orgs) % 3 + 1],
           false, false, false, false, false, '{}'::jsonb, now()
    FROM generate_series(1, :users) AS g
    """,
    """
    INSERT INTO portal_users (org_id, record_id, user_type_id, status, email, created_at,
                              updated_at)
    SELECT r.org_id, r.id, t.id,
           CASE WHEN r.id % 10 = 0 THEN 'deactivated'
                WHEN r.id % 25 = 1 THEN 'removed'
                WHEN r.id % 3 = 0 THEN 'invited'
                ELSE 'confirmed' END,
           'user' || r.id || '@customer.example.org', now(), now()
    FROM crm_records AS r
    JOIN portal_user_types AS t ON t.org_id = r.org_id AND t.module = r.module
    """,
)


# The loaded tables' indexes that no constraint owns: (name, CREATE INDEX statement).
PLAIN_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
WHERE i.indrelid::regclass::text = ANY(:tables)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="--users and --orgs override the scale's figures.",
    )
    parser.add_argument(
        "--scale",
        choices=SCALES,
        default="1x",
        help=", ".join(f"{name}: {u:,} users in {o:,} orgs" for name, (u, o) in SCALES.items())
        + " (default 1x)",
    )
    parser.add_argument("--quick", action="store_true", help="the same as --scale quick")
    parser.add_argument("--users", type=int, help="portal users")
    parser.add_argument("--orgs", type=int, help="orgs")
    args = parser.parse_args()
    scale_users, scale_orgs = SCALES["quick" if args.quick else args.scale]
    users = args.users or scale_users
    orgs = args.orgs or scale_orgs
    if orgs < 1 or users < orgs:
        parser.error("need at least one org and at least one user per org")

    with database() as url:
        upgrade(url)
        load_seconds = load(url, users, orgs)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        try:
            rss_before = peak_rss_mb()
            with factory() as session:
                started = time.perf_counter()
                summary = reconcile(session, DAY)
                reconcile_seconds = time.perf_counter() - started
            rss_after = peak_rss_mb()
            with factory() as session:
                started = time.perf_counter()
                rerun = reconcile(session, DAY)
                rerun_seconds = time.perf_counter() - started
                reports = session.scalar(select(func.count()).select_from(LicenceReport))
                assert reports == orgs == session.scalar(select(func.count()).select_from(Org))
                server = session.scalar(text("SHOW server_version"))
        finally:
            engine.dispose()

    figures: dict[str, object] = {
        "python": platform.python_version(),
        "postgresql": server,
        "users": users,
        "orgs": orgs,
        "load_s": round(load_seconds, 2),
        "reconcile_s": round(reconcile_seconds, 3),
        "rerun_s": round(rerun_seconds, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "reconcile_rss_delta_mb": round(rss_after - rss_before, 1),
        "reports_written": summary.reports_written,
        "counters_corrected": summary.counters_corrected,
        "alerts_raised": summary.alerts_raised,
        "rerun_counters_corrected": rerun.counters_corrected,
        "rerun_alerts_raised": rerun.alerts_raised,
    }
    for name, value in figures.items():
        print(f"{name:28} {value}")
    print(json.dumps(figures))


@contextmanager
def database() -> Iterator[str]:
    """The configured database URL, or a throwaway database dropped afterwards."""
    configured = os.environ.get("PORTALFLOW_BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    name = f"portalflow_bench_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def load(url: str, users: int, orgs: int) -> float:
    """Fill the database server-side; then VACUUM ANALYZE so plans see the real sizes."""
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        with engine.begin() as connection:
            if connection.scalar(text("SELECT count(*) FROM orgs")):
                raise SystemExit("the bench database must be empty (it holds orgs)")
            # A bench loader may skip the foreign key triggers (superuser only): the rows it
            # writes are consistent by construction, and the checks would triple the time.
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            # Indexes are built once after the insert rather than row by row (those behind
            # the primary keys and the unique constraints stay).
            indexes = connection.execute(text(PLAIN_INDEXES), {"tables": list(LOADED_TABLES)})
            indexes = indexes.all()
            for name, _definition in indexes:
                connection.execute(text(f'DROP INDEX "{name}"'))
            for statement in LOAD:
                connection.execute(text(statement), {"users": users, "orgs": orgs})
            for _name, definition in indexes:
                connection.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    print(f"{'loaded':28} {users:,} users in {orgs:,} orgs in {seconds:.1f} s")
    return seconds


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
