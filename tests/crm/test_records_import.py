"""Importing CRM records: per-row errors with line numbers, upserts, set-based batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portalflow.models import CrmRecord
from portalflow.pipelines.crm.record_files import RowError, read_record_file
from portalflow.pipelines.crm.records import import_records
from portalflow.pipelines.errors import InvalidInput, NotFound

from ..factories import make_inviter, make_org, make_record


def _records(session: Session) -> dict[str, CrmRecord]:
    session.expire_all()
    return {record.crm_id: record for record in session.scalars(select(CrmRecord))}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def _count_statements(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_csv_import_loads_good_rows_and_reports_bad_lines(session: Session, tmp_path: Path) -> None:
    org = make_org(session)
    owner = make_inviter(session, org)
    path = _write(
        tmp_path / "contacts.csv",
        "crm_id,module,First Name,last_name,email,owner_email,consent_given,Account\n"
        "C1,Contacts,Sage,Weiser,sage@customer.example.org,RUSSELL@zylker.com,yes,Acme\n"
        "C2,Contacts,Ann,,ann@customer.example.org,,maybe,Beta\n"
        ",Contacts,No,Id,,,,\n"
        'C3,Leads,"Two\nlines",Z,c3@x.org,nobody@zylker.com,no,\n'
        "C4,Leads, Bob ,B,b@x.org,,0,\n",
    )

    report = import_records(session, org.id, read_record_file(path))

    assert (report.created, report.updated) == (2, 0)
    assert [error.line for error in report.errors] == [3, 4, 5]
    assert "consent_given" in report.errors[0].message
    assert "crm_id" in report.errors[1].message
    assert "owner_email" in report.errors[2].message
    records = _records(session)
    assert set(records) == {"C1", "C4"}
    c1 = records["C1"]
    assert (c1.first_name, c1.owner_id, c1.consent_given) == ("Sage", owner.id, True)
    assert c1.fields == {"Account": "Acme"}
    assert (records["C4"].first_name, records["C4"].fields) == ("Bob", {"Account": None})


def test_jsonl_import_reports_malformed_lines(session: Session, tmp_path: Path) -> None:
    org = make_org(session)
    path = _write(
        tmp_path / "records.jsonl",
        '{"id": 101, "module": "Leads", "email": "a@x.org", "fields": {"score": 7}}\n'
        "{not json\n"
        "\n"
        '["an", "array"]\n'
        '{"crm_id": "102", "module": "Leads", "deleted": "TRUE", "tags": ["vip"]}\n'
        '{"crm_id": "103", "module": "Leads", "review_locked": "sometimes"}\n',
    )

    report = import_records(session, org.id, read_record_file(path))

    assert (report.created, report.updated) == (2, 0)
    assert [(error.line, "JSON" in error.message) for error in report.errors] == [
        (2, True),
        (4, True),
        (6, False),
    ]
    assert "review_locked" in report.errors[2].message
    records = _records(session)
    assert records["101"].fields == {"score": 7}
    assert records["102"].deleted is True
    assert records["102"].fields == {"tags": ["vip"]}


def test_upsert_updates_only_given_fields_and_merges_extras(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session)
    make_record(session, org, "C1", phone="+1 555 0100", fields={"Account": "Acme", "Tier": "A"})
    path = _write(
        tmp_path / "update.csv",
        "id,email,approval_locked,Tier,Region\n"
        "C1,new@customer.example.org,true,B,EU\n"
        "C2,c2@customer.example.org,,,\n",
    )

    report = import_records(session, org.id, read_record_file(path), default_module="Contacts")

    assert (report.created, report.updated, report.errors) == (1, 1, [])
    records = _records(session)
    c1 = records["C1"]
    assert (c1.email, c1.approval_locked, c1.phone) == (
        "new@customer.example.org",
        True,
        "+1 555 0100",
    )
    assert (c1.first_name, c1.module) == ("Sage", "Contacts")
    assert c1.fields == {"Account": "Acme", "Tier": "B", "Region": "EU"}
    assert (records["C2"].module, records["C2"].approval_locked) == ("Contacts", False)


def test_new_record_needs_a_module_but_an_update_does_not(session: Session) -> None:
    org = make_org(session)
    make_record(session, org, "C1", module="Vendors")

    report = import_records(
        session, org.id, [(2, {"crm_id": "C1", "deleted": "yes"}), (3, {"crm_id": "C9"})]
    )

    assert (report.created, report.updated) == (0, 1)
    assert report.errors == [RowError(3, "field module is missing (needed to create a record)")]
    records = _records(session)
    assert (records["C1"].module, records["C1"].deleted) == ("Vendors", True)


def test_batches_of_two_over_five_rows(session: Session) -> None:
    org = make_org(session)
    make_record(session, org, "R4")
    rows = [
        (line, {"crm_id": f"R{n}", "module": "Contacts", "last_name": f"N{n}"})
        for line, n in enumerate((1, 2, 3, 4, 5), start=2)
    ]
    # The same id again, in a later batch than its first appearance.
    rows.append((7, {"crm_id": "R1", "last_name": "Again"}))

    report = import_records(session, org.id, rows, batch_size=2)

    assert (report.created, report.updated, report.errors) == (4, 2, [])
    records = _records(session)
    assert sorted(records) == ["R1", "R2", "R3", "R4", "R5"]
    assert (records["R1"].last_name, records["R4"].last_name) == ("Again", "N4")


def test_import_is_set_based(session: Session) -> None:
    org = make_org(session)
    make_inviter(session, org)
    for n in range(50):
        make_record(session, org, f"R{n}")
    session.commit()
    rows = [
        (
            n + 2,
            {
                "crm_id": f"R{n}",
                "module": "Contacts",
                "email": f"r{n}@customer.example.org",
                "owner_email": "russell@zylker.com",
                "in_recycle_bin": "no",
                **({"Extra": n} if n % 2 else {"phone": "123"}),
            },
        )
        for n in range(100)
    ]

    with _count_statements(session) as statements:
        report = import_records(session, org.id, rows)

    assert (report.created, report.updated, report.errors) == (50, 50, [])
    assert len(statements) < 10, [s[:60] for s in statements]
    assert len(_records(session)) == 100


def test_unknown_org_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="org 999"):
        import_records(session, 999, [(2, {"crm_id": "C1", "module": "Contacts"})])


def test_too_long_value_is_a_row_error(session: Session) -> None:
    org = make_org(session)
    report = import_records(
        session,
        org.id,
        [(2, {"crm_id": "x" * 65, "module": "Contacts"}), (3, {"crm_id": "ok", "module": "M"})],
    )
    assert report.created == 1
    assert report.errors == [RowError(2, "field crm_id is longer than 64 characters")]


def test_read_record_file_formats(tmp_path: Path) -> None:
    sniffed = _write(tmp_path / "export.txt", json.dumps({"crm_id": "1"}) + "\n")
    assert list(read_record_file(sniffed)) == [(1, {"crm_id": "1"})]
    tsv = _write(tmp_path / "export.tsv", "crm_id\tmodule\n\n7\tLeads\n")
    assert list(read_record_file(tsv)) == [(3, {"crm_id": "7", "module": "Leads"})]
    with pytest.raises(InvalidInput, match="does not exist"):
        read_record_file(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="cannot tell the format"):
        read_record_file(_write(tmp_path / "notes.txt", "just words\n"))
    with pytest.raises(InvalidInput, match="appears twice"):
        list(read_record_file(_write(tmp_path / "dup.csv", "crm_id,crm_id\n1,2\n")))
