"""Importing DLT registry exports: column synonyms, string ids, row errors, CSV and XLSX."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import DltTemplate, DltTemplateStatus
from portalflow.pipelines.content.dlt import import_dlt_file
from portalflow.pipelines.errors import InvalidInput, NotFound

from ..factories import make_org

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures" / "dlt"
JIO = FIXTURES / "jio-approved.csv"
VI = FIXTURES / "vi-typed.csv"
JIO_HEADER = ["TEMPLATE_ID", "TEMPLATE_NAME", "TEMPLATE_CONTENT", "VARIABLE_COUNT", "HEADER",
              "CATEGORY", "STATUS", "ENTITY_ID"]  # fmt: skip


def _templates(session: Session) -> dict[str, DltTemplate]:
    session.expire_all()
    return {t.template_id: t for t in session.scalars(select(DltTemplate))}


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_jio_export_loads_approved_and_rejected_and_refuses_the_mangled_id(
    session: Session,
) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    report = import_dlt_file(session, org.id, JIO)
    session.commit()

    assert (report.created, report.updated, report.rejected_rows_imported) == (4, 0, 1)
    [error] = report.errors
    assert error.line == 6
    assert "1.20717E+18" in error.message and "lost" in error.message

    templates = _templates(session)
    statuses = {tid: t.status for tid, t in templates.items()}
    assert statuses == {
        "1207170000000000101": DltTemplateStatus.APPROVED,
        "1207170000000000102": DltTemplateStatus.APPROVED,
        "1207170000000000103": DltTemplateStatus.APPROVED,
        "1207170000000000104": DltTemplateStatus.REJECTED,
    }
    invite = templates["1207170000000000101"]
    assert invite.content.startswith("Dear {#var#}, you are invited to the {#var#} portal.")
    assert (invite.name, invite.header, invite.entity_id) == (
        "portal_invite", "ZYLKER", "1201170000000000001",
    )  # fmt: skip
    assert (invite.variable_count, invite.content_type, invite.org_id) == (
        3, "Service Implicit", org.id,
    )  # fmt: skip


def test_reimport_updates_by_template_id(session: Session) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    other = make_org(session, name="Acme", company_domain="acme.com", country="IN")
    import_dlt_file(session, org.id, JIO)
    again = import_dlt_file(session, org.id, JIO)
    elsewhere = import_dlt_file(session, other.id, JIO)
    assert (again.created, again.updated) == (0, 4)
    assert (elsewhere.created, elsewhere.updated) == (4, 0)
    assert len(session.scalars(select(DltTemplate)).all()) == 8


def test_vi_export_other_labels_line_breaks_and_typed_tags(session: Session) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    report = import_dlt_file(session, org.id, VI)
    assert (report.created, report.errors) == (3, [])

    invite = _templates(session)["1107177000000000201"]
    assert invite.content == (
        "Dear {#alphanumeric#},\nyou are invited to the {#alphanumeric#} portal. "
        "Accept: {#url#} - Zylker"
    )
    assert invite.variable_count == 3
    assert (invite.name, invite.header, invite.entity_id) == (
        "portal_invite_typed", "ZYLKER", "1101177000000000002",
    )  # fmt: skip
    # Content Type is the category; Template Type (TEXT) is not.
    assert invite.content_type == "Service Implicit"
    assert invite.status == DltTemplateStatus.APPROVED
    verify = _templates(session)["1107177000000000202"]
    assert verify.content.startswith("{#numeric#} is your {#alphanumeric#} portal")


def test_malformed_rows_are_reported_by_line_while_good_rows_load(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    good = "Hi {#var#} - Zylker"
    path = _write_csv(
        tmp_path / "dlt.csv",
        JIO_HEADER,
        [
            ["120717000000000301", "ok1", good, "1", "ZYLKER", "", "Approved", ""],  # line 2
            ["", "no_id", good, "1", "ZYLKER", "", "Approved", ""],  # 3
            ["120717000000000302", "no_content", "  ", "", "ZYLKER", "", "Approved", ""],  # 4
            ["12071700003", "short_id", good, "", "ZYLKER", "", "Approved", ""],  # 5
            ["120717000000000303", "bad_tag", "Due {#date#} - Zylker", "", "", "", "", ""],  # 6
            ["120717000000000304", "bad_count", good, "2", "", "", "Approved", ""],  # 7
            ["120717000000000305", "bad_entity", good, "1", "", "", "Approved", "12E5"],  # 8
            ["120717000000000306", "ok2", "Multi\nline {#var#}", "1", "", "", "Blocked", ""],
            ["abc", "after_multiline", good, "1", "", "", "Approved", ""],  # 11
        ],
    )
    report = import_dlt_file(session, org.id, path)
    assert report.created == 2
    assert [error.line for error in report.errors] == [3, 4, 5, 6, 7, 8, 11]
    messages = [error.message for error in report.errors]
    assert "template id is missing" in messages[0]
    assert "content is missing" in messages[1]
    assert "'12071700003' is not 12 to 19 digits" in messages[2]
    assert "unknown DLT variable '{#date#}'" in messages[3]
    assert "VARIABLE_COUNT says 2 but the content has 1" in messages[4]
    assert "entity id" in messages[5]
    # A quoted multi-line value: the next row's line number still counts physical lines.
    assert _templates(session)["120717000000000306"].status == DltTemplateStatus.PENDING


def test_a_file_without_id_and_content_columns_is_refused_whole(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    path = _write_csv(
        tmp_path / "contacts.csv", ["Name", "Phone", "Template ID"], [["a", "b", "c"]]
    )
    with pytest.raises(InvalidInput) as refused:
        import_dlt_file(session, org.id, path)
    message = str(refused.value)
    assert "a content column (TEMPLATE_CONTENT" in message
    assert "template id column" not in message
    assert "found 'Name', 'Phone', 'Template ID'" in message
    assert session.scalars(select(DltTemplate)).all() == []


def test_unknown_org_and_missing_file(session: Session, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        import_dlt_file(session, 999, JIO)
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    with pytest.raises(InvalidInput, match="does not exist"):
        import_dlt_file(session, org.id, tmp_path / "nope.csv")


def test_template_type_is_the_category_only_without_a_category_column(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    path = _write_csv(
        tmp_path / "sheet.csv",
        ["content template id", "Template_Content", "Template Type", "Peid", "Extra"],
        [
            ["1207170000000000401", "Hi {#var#} - Zylker", "Transactional", "", "x"],
            ["1207170000000000402", "Hi {#var#} - Zylker", "UNICODE", "", "y"],
        ],
    )
    report = import_dlt_file(session, org.id, path)
    assert report.errors == []
    templates = _templates(session)
    assert templates["1207170000000000401"].content_type == "Transactional"
    assert templates["1207170000000000402"].content_type is None
    assert templates["1207170000000000401"].status == DltTemplateStatus.PENDING


def test_xlsx_imports_like_the_csv(session: Session, tmp_path: Path) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    with JIO.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        # Ids stay text cells; the mangled one is what Excel would store: a number.
        sheet.append([1.20717e18 if value == "1.20717E+18" else value for value in row])
    sheet.append(["1207170000000000105", "br", "Hi<br/>{#var#} - Zylker", 1, "ZYLKER", "",
                  "Approved", 1201170000000000001])  # fmt: skip
    path = tmp_path / "jio.xlsx"
    workbook.save(path)

    report = import_dlt_file(session, org.id, path)
    assert (report.created, report.rejected_rows_imported) == (4, 1)
    assert [error.line for error in report.errors] == [6, 7]
    assert "number cell" in report.errors[0].message
    assert "entity id is a number cell" in report.errors[1].message
    templates = _templates(session)
    assert templates["1207170000000000102"].status == DltTemplateStatus.APPROVED
    assert templates["1207170000000000102"].variable_count == 2
    assert templates["1207170000000000101"].entity_id == "1201170000000000001"


def test_xlsx_header_may_sit_below_a_title_row(session: Session, tmp_path: Path) -> None:
    org = make_org(session, name="Zylker", country="IN", data_centre="in")
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Approved content templates, exported 2026-01-05"])
    sheet.append([])
    sheet.append(["Template Id", "Template Message", "Sender ID", "Status"])
    sheet.append(["1107177000000000501", "Code {#numeric#} - Zylker", "ZYLKER", "approved"])
    sheet.append(["1107177000000000502", "", "ZYLKER", "approved"])
    path = tmp_path / "title.xlsx"
    workbook.save(path)
    report = import_dlt_file(session, org.id, path)
    assert report.created == 1
    assert [(error.line, "content is missing" in error.message) for error in report.errors] == [
        (5, True)
    ]
    assert _templates(session)["1107177000000000501"].header == "ZYLKER"
