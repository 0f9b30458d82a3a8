"""One portal user's page of 50 records from a module of 1,000,000 records, on PostgreSQL.

Loads one org with N records in a ``Quotes`` module and N/50 contacts (each contact is
linked to 50 quotes through the ``Contact_Name`` lookup) with server-side ``INSERT ...
SELECT generate_series(...)``, exposes Quotes to three user types with the seeds' kinds of
rule, creates the indexes :func:`portalflow.pipelines.access.compiler.index_statements`
names for them (printed), and times ``list_records`` (the whole call: the user, their type
and set, the exposure, the catalogue, then the one compiled query) for random users:

- ``lookup_and_value``: the user's quotes once approved (lookup AND Quote_Stage equals);
- ``lookup_or_criteria``: linked by lookup OR Region in five states OR Service_Region
  equals the user's Mailing_State (about 12% of the module matches);
- ``public_by_field``: a public module, Available_Area equals the user's Mailing_Country
  (5% of the module matches).

Also prints, per rule, the indexes PostgreSQL's plan uses. ``--no-indexes`` skips the
rules' indexes, to show what they are for. Target: p95 < 20 ms.

The database: ``PORTALFLOW_BENCH_DATABASE_URL`` (an empty database; migrated and filled,
not emptied), else a throwaway ``portalflow_bench_access_<pid>`` on 127.0.0.1:5432 as user
postgres, dropped at the end. Prints one line per figure, then a one-line JSON summary.

    .venv/bin/python -m bench.access_page [--quick] [--records N] [--no-indexes]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from typing import Any

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.harness import configured_or_temporary_database
from portalflow.models import PortalUser, make_engine, make_session_factory
from portalflow.models.schema import upgrade
from portalflow.pipelines.access import compiler, config, records
from portalflow.pipelines.access.policy import load_viewer, module_policy

TARGET_P95_MS = 20.0
PAGE = 50
USERS_PER_TYPE = 300
REQUESTS = 300
WARMUP = 30
STATES = 50
COUNTRIES = 20

CONTACT_FIELDS = [
    {"name": "first_name", "type": "text"},
    {"name": "Mailing_State", "type": "text"},
    {"name": "Mailing_Country", "type": "text"},
]
QUOTE_FIELDS = [
    {"name": "Subject", "type": "text"},
    {"name": "Contact_Name", "type": "lookup", "lookup_module": "Contacts"},
    {
        "name": "Quote_Stage",
        "type": "picklist",
        "options": ["Draft", "Negotiating", "Approved", "Rejected"],
    },
    {"name": "Region", "type": "text"},
    {"name": "Service_Region", "type": "text"},
    {"name": "Available_Area", "type": "text"},
    {"name": "Amount", "type": "number"},
]
# Scenario -> (public, rule).
RULES: dict[str, tuple[bool, dict[str, Any]]] = {
    "lookup_and_value": (
        False,
        {
            "all": [
                {"lookup": "Contact_Name"},
                {"field": "Quote_Stage", "op": "equals", "value": "Approved"},
            ]
        },
    ),
    "lookup_or_criteria": (
        False,
        {
            "any": [
                {"lookup": "Contact_Name"},
                {"field": "Region", "op": "in", "value": ["S1", "S2", "S3", "S4", "S5"]},
                {"field": "Service_Region", "op": "equals", "primary_field": "Mailing_State"},
            ]
        },
    ),
    "public_by_field": (
        True,
        {"field": "Available_Area", "op": "equals", "primary_field": "Mailing_Country"},
    ),
}

LOAD = (
    """
    INSERT INTO orgs (name, company_domain, edition, data_centre, country, near_limit_percent,
                      created_at)
    VALUES ('Bench', 'bench.example.com', 'enterprise', 'us', 'US', 90, now())
    """,
    """
    INSERT INTO portal_user_types (org_id, name, module, invitation_preference,
                                   invitation_field, is_client_portal, enabled, holders_cached,
                                   created_at)
    SELECT 1, s.name, 'Contacts', 'email', 'email', s.n = 1, true, 0, now()
    FROM (VALUES (1, 'lookup_and_value'), (2, 'lookup_or_criteria'), (3, 'public_by_field'))
         AS s (n, name)
    ORDER BY s.n
    """,
    """
    INSERT INTO crm_records (org_id, crm_id, module, first_name, approval_locked,
                             review_locked, consent_given, in_recycle_bin, deleted, fields,
                             updated_at)
    SELECT 1, 'C' || g, 'Contacts', 'Contact ' || g, false, false, false, false, false,
           jsonb_build_object('Mailing_State', 'S' || (g % :states),
                              'Mailing_Country', 'K' || (g % :countries)),
           now()
    FROM generate_series(1, :contacts) AS g
    """,
    """
    INSERT INTO crm_records (org_id, crm_id, module, approval_locked, review_locked,
                             consent_given, in_recycle_bin, deleted, fields, updated_at)
    SELECT 1, 'Q' || g, 'Quotes', false, false, false, false, false,
           jsonb_build_object(
               'Subject', 'Quote ' || g,
               'Contact_Name', 'C' || (1 + g % :contacts),
               'Quote_Stage', (ARRAY['Draft', 'Negotiating', 'Approved', 'Rejected'])
                              [1 + (g / 7) % 4],
               'Region', 'S' || (g % :states),
               'Service_Region', 'S' || ((g / 3) % :states),
               'Available_Area', 'K' || ((g / 11) % :countries),
               'Amount', g % 10000),
           now()
    FROM generate_series(1, :records) AS g
    """,
    # Each type gets its own contacts as portal users (a record is in one type at most).
    """
    INSERT INTO portal_users (org_id, record_id, user_type_id, status, email, created_at,
                              updated_at)
    SELECT 1, r.id, 1 + r.id % 3, 'confirmed', 'user' || r.id || '@customer.example.org',
           now(), now()
    FROM crm_records AS r
    WHERE r.module = 'Contacts' AND r.id <= :portal_users
    """,
)


def main() -> None:
    """Load, configure, measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the module")
    parser.add_argument("--quick", action="store_true", help="50,000 records, fewer requests")
    parser.add_argument(
        "--no-indexes", action="store_true", help="skip the rules' indexes (to compare)"
    )
    args = parser.parse_args()
    total = 50_000 if args.quick else args.records
    requests = 60 if args.quick else REQUESTS
    if total < 5_000:
        parser.error("need at least 5,000 records")

    with configured_or_temporary_database() as url:
        upgrade(url)
        load_seconds = load(url, total)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        try:
            indexes = configure(factory, with_indexes=not args.no_indexes)
            analyze(engine)
            figures: dict[str, Any] = {
                "python": platform.python_version(),
                "postgresql": _server_version(engine),
                "records": total,
                "contacts": total // 50,
                "load_s": round(load_seconds, 1),
                "indexes": indexes,
                "target_p95_ms": TARGET_P95_MS,
            }
            for scenario in RULES:
                figures |= measure(factory, scenario, requests)
        finally:
            engine.dispose()

    for name, value in figures.items():
        if name == "indexes":
            for statement in value:
                print(f"{'index':32} {statement}")
            continue
        print(f"{name:32} {value}")
    print(json.dumps(figures))


def load(url: str, total: int) -> float:
    """Fill the database server-side."""
    engine = create_engine(url)
    values = {
        "records": total,
        "contacts": total // 50,
        "states": STATES,
        "countries": COUNTRIES,
        "portal_users": 3 * USERS_PER_TYPE,
    }
    try:
        started = time.perf_counter()
        with engine.begin() as connection:
            if connection.scalar(text("SELECT count(*) FROM orgs")):
                raise SystemExit("the bench database must be empty (it holds orgs)")
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in LOAD:
                connection.execute(text(statement), values)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    print(f"{'loaded':32} {total:,} records in {seconds:.1f} s")
    return seconds


def configure(factory: sessionmaker[Session], *, with_indexes: bool) -> list[str]:
    """Catalogue and exposures through the pipelines; then the indexes the rules need."""
    statements: list[str] = []
    with factory() as session:
        config.define_fields(session, 1, "Contacts", CONTACT_FIELDS)
        config.define_fields(session, 1, "Quotes", QUOTE_FIELDS)
        for user_type_id, (public, rule) in enumerate(RULES.values(), start=1):
            exposure = config.expose_module(
                session, 1, user_type_id, "Quotes", public=public, rule=rule
            )
            for statement in compiler.index_statements("Quotes", exposure.rule):
                if statement not in statements:
                    statements.append(statement)
        session.commit()
    if with_indexes:
        with factory() as session:
            for statement in statements:
                session.execute(text(statement))
            session.commit()
    return statements


def analyze(engine: Engine) -> None:
    """Fresh statistics (expression indexes included) so plans see the real sizes."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def measure(factory: sessionmaker[Session], scenario: str, requests: int) -> dict[str, Any]:
    """Time ``list_records`` for random users of the scenario's type."""
    user_type_id = list(RULES).index(scenario) + 1
    with factory() as session:
        users = list(
            session.scalars(select(PortalUser.id).where(PortalUser.user_type_id == user_type_id))
        )
        plan_indexes = _plan_indexes(session, users[0])
    picker = random.Random(21)
    times: list[float] = []
    sizes: list[int] = []
    for number in range(WARMUP + requests):
        user_id = picker.choice(users)
        with factory() as session:
            started = time.perf_counter()
            page = records.list_records(session, user_id, "Quotes", limit=PAGE)
            elapsed = (time.perf_counter() - started) * 1000
        if number >= WARMUP:
            times.append(elapsed)
            sizes.append(len(page.records))
    return {
        f"{scenario}_p50_ms": percentile(times, 50),
        f"{scenario}_p95_ms": percentile(times, 95),
        f"{scenario}_max_ms": round(max(times), 1),
        f"{scenario}_records_per_page": round(statistics.mean(sizes), 1),
        f"{scenario}_plan_indexes": plan_indexes,
    }


def _plan_indexes(session: Session, user_id: int) -> list[str]:
    """The indexes (or ``Seq Scan``) PostgreSQL's plan of the page query uses."""
    viewer = load_viewer(session, user_id)
    policy = module_policy(session, viewer, "Quotes")
    query = compiler.Compiler(policy, viewer, "postgresql").page(after=None, limit=PAGE)
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    plan = session.execute(text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()
    found: list[str] = []
    pending = [plan[0]["Plan"]]
    while pending:
        node = pending.pop()
        name = node.get("Index Name") or (
            "Seq Scan" if node.get("Node Type") == "Seq Scan" else None
        )
        if name and name not in found:
            found.append(name)
        pending.extend(node.get("Plans", []))
    return sorted(found)


def percentile(values: list[float], p: int) -> float:
    """The p-th percentile (inclusive method: within the measured range)."""
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 1)


def _server_version(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.scalar(text("SHOW server_version")))


if __name__ == "__main__":
    main()
