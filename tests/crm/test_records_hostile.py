"""Hostile record files: each bad row is reported with its line, the good rows still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portalflow.models import CrmRecord
from portalflow.pipelines.crm.record_files import MAX_DEPTH, read_record_file
from portalflow.pipelines.crm.records import import_records

from ..cli_runner import run
from ..factories import make_org

GOOD_ROWS = 10_000
HEADER = "crm_id,module,first_name,email\n"
DEEP = '{"crm_id": "B", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
DEEP_JSONL = DEEP + '\n{"crm_id": "C0"}\n{"crm_id": "C1"}\n{"crm_id": "C2"}\n'


def good_csv_rows(count: int, start: int = 0) -> str:
    return "".join(
        f"C{n},Contacts,Name {n},c{n}@example.org\n" for n in range(start, start + count)
    )


def loaded(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(CrmRecord)) or 0


def test_one_nul_byte_fails_its_row_not_the_file(session: Session, tmp_path: Path) -> None:
    org = make_org(session)
    path = tmp_path / "nul.csv"
    rows = good_csv_rows(GOOD_ROWS)
    path.write_text(HEADER + rows + "BAD,Contacts,Nu\x00ll,bad@example.org\n", encoding="utf-8")

    report = import_records(session, org.id, read_record_file(path))
    session.commit()

    assert report.created == GOOD_ROWS
    assert loaded(session) == GOOD_ROWS
    [error] = report.errors
    assert error.line == GOOD_ROWS + 2
    assert "NUL" in error.message and "first_name" in error.message


def test_an_unterminated_quote_fails_its_row_and_the_rest_loads(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session)
    path = tmp_path / "quote.csv"
    text = HEADER + good_csv_rows(3) + 'Q1,Contacts,"never closed,q@example.org\n'
    text += good_csv_rows(5, start=3)
    path.write_text(text, encoding="utf-8")

    report = import_records(session, org.id, read_record_file(path))
    session.commit()

    [error] = report.errors
    assert error.line == 5
    assert "never closed" in error.message
    assert report.created == 8
    assert "Q1" not in {crm_id for crm_id in session.scalars(select(CrmRecord.crm_id))}


def test_a_stray_quote_in_a_multiline_value_does_not_swallow_rows(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session)
    path = tmp_path / "stray.csv"
    text = HEADER + 'M1,Contacts,"two\nlines",m1@example.org\n'  # a legal multi-line value
    text += 'S1,Contacts,"opened\n' + good_csv_rows(2, start=10) + 'S2,Contacts,"x"y,z\n'
    text += good_csv_rows(2, start=20)
    path.write_text(text, encoding="utf-8")

    report = import_records(session, org.id, read_record_file(path))
    session.commit()

    assert [(error.line, "CSV" in error.message) for error in report.errors] == [
        (4, True),
        (7, True),
    ]
    crm_ids = set(session.scalars(select(CrmRecord.crm_id)))
    assert crm_ids == {"M1", "C10", "C11", "C20", "C21"}
    assert session.scalar(select(CrmRecord.first_name).where(CrmRecord.crm_id == "M1")) == (
        "two\nlines"
    )


def test_deeply_nested_and_unstorable_json_lines_are_row_errors(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session)
    good = [json.dumps({"crm_id": f"J{n}", "module": "Contacts"}) for n in range(4)]
    deep = '{"crm_id": "D1", "module": "Contacts", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    just_too_deep = {"crm_id": "D2", "module": "Contacts", "x": 1}
    for _ in range(MAX_DEPTH):
        just_too_deep = {"crm_id": "D2", "module": "Contacts", "x": [just_too_deep["x"]]}
    lines = [
        good[0],
        deep,
        good[1],
        json.dumps(just_too_deep),
        '{"crm_id": "N1", "module": "Contacts", "note": "a\\u0000b"}',
        '{"crm_id": "N2", "module": "Contacts", "note": "\\ud800"}',
        '{"crm_id": "N3", "module": "Contacts", "score": NaN}',
        '{"crm_id": "N4", "module": "Contacts", "score": 1e400}',
        '{"crm_id": "N5", "module": "Contacts", "x": {"k\\u0000": 1}}',
        good[2],
        good[3],
    ]
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = import_records(session, org.id, read_record_file(path))
    session.commit()

    assert report.created == 4
    assert [error.line for error in report.errors] == [2, 4, 5, 6, 7, 8, 9]
    messages = [error.message for error in report.errors]
    assert "deeper" in messages[0] and "deeper" in messages[1]
    assert "NUL" in messages[2] and "surrogate" in messages[3]
    assert "NaN" in messages[4] and "too large" in messages[5] and "NUL" in messages[6]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("nul.csv", HEADER + good_csv_rows(3) + "B,Contacts,x\x00y,b@example.org\n"),
        ("quote.csv", HEADER + 'B,Contacts,"open,b@example.org\n' + good_csv_rows(3)),
        ("deep.jsonl", DEEP_JSONL),
    ],
)
def test_the_command_reports_lines_and_exits_1_without_a_traceback(
    cli_env: Path, tmp_path: Path, name: str, content: str
) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    assert code == 0, out
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    code, out = run("records", "import", str(path), "--org", "1", "--module", "Contacts", "--json")

    assert code == 1, out
    assert "Traceback" not in out
    report = json.loads(out[out.index("{") :])
    assert report["created"] == 3
    expected_line = {"nul.csv": 5, "quote.csv": 2, "deep.jsonl": 1}[name]
    assert [error["line"] for error in report["errors"]] == [expected_line]
