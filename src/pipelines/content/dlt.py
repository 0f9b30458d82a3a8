"""Importing an org's DLT template registry from an operator portal's export (CSV or XLSX).

Portals name their columns differently; the known labels are recognised ignoring case,
spaces and underscores, and every other column is ignored. Ids are kept as strings: a row
whose id a spreadsheet turned into a number (``1.20717E+18``) has lost digits and is
refused, never rounded. A bad row becomes a :class:`RowError` with its line number while
the good rows still load; rows are upserted by ``(org_id, template_id)``.

Example::

    report = import_dlt_file(session, org.id, Path("jio-approved.csv"))
    session.commit()
    print(report.created, report.updated, [(e.line, e.message) for e in report.errors])
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import DltTemplate, DltTemplateStatus, utcnow
from portalflow.pipelines.crm.record_files import RowError
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy import orgs

from .sms_text import normalise_dlt_content, parse_dlt_content

# Our field -> the labels portals use for it, as compared (lower case, no spaces/underscores),
# most specific first: the first label present in the header wins.
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "template_id": ("templateid", "contenttemplateid"),
    "name": ("templatename",),
    "content": ("templatecontent", "templatemessage", "messagecontent", "content"),
    "header": ("header", "senderid"),
    "content_type": ("category", "contenttype"),
    "status": ("status",),
    "entity_id": ("entityid", "peid"),
    "variable_count": ("variablecount",),
    # TEXT / UNICODE on some portals, the category on others.
    "template_type": ("templatetype",),
}
REQUIRED_LABELS = {
    "template_id": "TEMPLATE_ID / Template ID / Content Template ID",
    "content": "TEMPLATE_CONTENT / Template Message / Message Content / Template Content / Content",
}
ENCODING_TYPES = frozenset({"text", "unicode"})
ID_DIGITS = (12, 19)
# The first rows of a sheet may be a title; the header is searched for this far down.
HEADER_SEARCH_ROWS = 10
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
# A spreadsheet number keeps 15 significant digits; a longer id in a number cell is lost.
EXACT_NUMBER_DIGITS = 15

_LENGTHS = {
    name: DltTemplate.__table__.c[name].type.length for name in ("name", "header", "content_type")
}
_SCIENTIFIC = re.compile(r"[0-9](?:[.,][0-9]+)?[eE][+-]?[0-9]+")
_LABEL_NOISE = re.compile(r"[\s_\-]+")
_STATUSES = {"approved": DltTemplateStatus.APPROVED, "rejected": DltTemplateStatus.REJECTED}

# A row as read: its 1-based line (CSV physical line, sheet row number) and its cells.
SheetRow = tuple[int, Sequence[Any]]


@dataclass(frozen=True)
class DltSheet:
    """A DLT export with its header located: which column holds which field, and the rows."""

    source: str
    header: tuple[str, ...]
    columns: dict[str, int]
    rows: list[SheetRow]


@dataclass
class DltImportReport:
    created: int = 0
    updated: int = 0
    rejected_rows_imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.created + self.updated


class _RowProblem(Exception):
    """Raised while reading one row; becomes that row's RowError."""


@dataclass
class _DltRow:
    line: int
    template_id: str
    values: dict[str, Any]


def import_dlt_file(session: Session, org_id: int, path: Path) -> DltImportReport:
    """Read a DLT export and upsert its templates into the org (flushed, never committed)."""
    orgs.get_org(session, org_id)
    return import_dlt(session, org_id, read_dlt_file(path))


def read_dlt_file(path: Path) -> DltSheet:
    """A CSV/TSV or XLSX DLT export with its columns recognised; InvalidInput if unusable."""
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise InvalidInput(f"DLT file {label!r} does not exist")
    if path.is_dir():
        raise InvalidInput(f"{label!r} is a directory, not a DLT file")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InvalidInput(f"{label!r} is an old .xls workbook; save it as .xlsx or .csv")
    rows = _read_xlsx(path) if suffix in XLSX_SUFFIXES else _read_csv(path)
    return locate_header(label, rows)


def locate_header(source: str, rows: Sequence[SheetRow]) -> DltSheet:
    """Find the header row (the first with an id and a content column) and map its columns."""
    first_found: Sequence[Any] | None = None
    for index, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if not any(_text(cell) for cell in cells):
            continue
        header = tuple(_text(cell) for cell in cells)
        first_found = first_found or header
        columns = resolve_columns(header)
        if "template_id" in columns and "content" in columns:
            return DltSheet(source, header, columns, list(rows[index + 1 :]))
    missing = [
        f"a {name.replace('_', ' ')} column ({labels})"
        for name, labels in REQUIRED_LABELS.items()
        if name not in resolve_columns(first_found or ())
    ]
    found = ", ".join(repr(name) for name in first_found or () if name) or "no columns at all"
    raise InvalidInput(
        f"{source!r} is not a DLT template export: it needs {' and '.join(missing)}; found {found}"
    )


def resolve_columns(header: Iterable[str]) -> dict[str, int]:
    """Our field name -> column index, for the labels recognised in ``header``."""
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        positions.setdefault(_LABEL_NOISE.sub("", str(name).strip().lower()), index)
    columns: dict[str, int] = {}
    for name, synonyms in COLUMN_SYNONYMS.items():
        for synonym in synonyms:
            if synonym in positions:
                columns[name] = positions[synonym]
                break
    # Template Type is the category only when no other column says it.
    template_type = columns.pop("template_type", None)
    if "content_type" not in columns and template_type is not None:
        columns["category_from_template_type"] = template_type
    return columns


def import_dlt(session: Session, org_id: int, sheet: DltSheet) -> DltImportReport:
    """Upsert the sheet's templates by ``(org_id, template_id)``; bad rows become RowErrors."""
    orgs.get_org(session, org_id)
    report = DltImportReport()
    parsed: list[_DltRow] = []
    width = len(sheet.header)
    for line, cells in sheet.rows:
        if not any(_text(cell) for cell in cells):
            continue
        extra = [cell for cell in cells[width:] if _text(cell)]
        if extra:
            report.errors.append(
                RowError(line, f"has {width + len(extra)} values but the header names {width}")
            )
            continue
        try:
            parsed.append(_parse_row(line, sheet.columns, cells))
        except _RowProblem as problem:
            report.errors.append(RowError(line, str(problem)))
    _upsert(session, org_id, parsed, report)
    report.errors.sort(key=lambda error: error.line)
    return report


def _parse_row(line: int, columns: dict[str, int], cells: Sequence[Any]) -> _DltRow:
    def cell(name: str) -> Any:
        index = columns.get(name)
        return cells[index] if index is not None and index < len(cells) else None

    template_id = _digits(cell("template_id"), "template id")
    if template_id is None:
        raise _RowProblem("the template id is missing")
    content = normalise_dlt_content(_text(cell("content")))
    if not content:
        raise _RowProblem(f"template {template_id}: the content is missing")
    try:
        variables = parse_dlt_content(content).variables
    except InvalidInput as exc:
        raise _RowProblem(f"template {template_id}: {exc}") from None
    if "variable_count" in columns:
        declared = _count(cell("variable_count"))
        if declared is not None and declared != len(variables):
            raise _RowProblem(
                f"template {template_id}: VARIABLE_COUNT says {declared} but the content has "
                f"{len(variables)} variable(s)"
            )
    content_type = _text(cell("content_type")).strip() or None
    if content_type is None and "category_from_template_type" in columns:
        content_type = _text(cell("category_from_template_type")).strip() or None
        if content_type and content_type.lower() in ENCODING_TYPES:
            content_type = None
    values = {
        "content": content,
        "variable_count": len(variables),
        "name": _bounded(cell("name"), "name", template_id),
        "header": _bounded(cell("header"), "header", template_id),
        "content_type": _bounded(content_type, "content_type", template_id),
        "entity_id": _digits(cell("entity_id"), "entity id"),
        "status": _STATUSES.get(_text(cell("status")).strip().lower(), DltTemplateStatus.PENDING),
    }
    return _DltRow(line, template_id, values)


def _upsert(session: Session, org_id: int, rows: list[_DltRow], report: DltImportReport) -> None:
    wanted = sorted({row.template_id for row in rows})
    existing: dict[str, DltTemplate] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(DltTemplate).where(
            DltTemplate.org_id == org_id, DltTemplate.template_id.in_(chunk)
        )
        existing.update({template.template_id: template for template in session.scalars(query)})
    now = utcnow()
    for row in rows:
        template = existing.get(row.template_id)
        if template is None:
            template = DltTemplate(org_id=org_id, template_id=row.template_id)
            session.add(template)
            existing[row.template_id] = template
            report.created += 1
        else:
            report.updated += 1
        for name, value in row.values.items():
            setattr(template, name, value)
        template.imported_at = now
        if row.values["status"] == DltTemplateStatus.REJECTED:
            report.rejected_rows_imported += 1
    session.flush()


# --- cells ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A cell as text: numbers without a spurious ``.0``, dates in ISO form, empty for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _digits(value: Any, label: str) -> str | None:
    """A 12-19 digit id kept as a string; a number cell that cannot hold it is refused."""
    low, high = ID_DIGITS
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        exact = isinstance(value, int) or value.is_integer()
        if not exact or len(str(abs(int(value)))) > EXACT_NUMBER_DIGITS:
            raise _RowProblem(
                f"the {label} is a number cell ({value!r}); a spreadsheet keeps only "
                f"{EXACT_NUMBER_DIGITS} digits of a number, so the id may be lost: "
                "format the column as text and export again"
            )
        value = str(int(value))
    text = str(value).strip()
    if _SCIENTIFIC.fullmatch(text):
        raise _RowProblem(
            f"the {label} {text!r} was turned into a number by a spreadsheet and has lost "
            "its digits; export the file again with the id column as text"
        )
    if not (text.isascii() and text.isdigit() and low <= len(text) <= high):
        raise _RowProblem(f"the {label} {text!r} is not {low} to {high} digits")
    return text


def _count(value: Any) -> int | None:
    text = _text(value).strip()
    if not text:
        return None
    if not text.isdigit():
        raise _RowProblem(f"VARIABLE_COUNT {text!r} is not a whole number")
    return int(text)


def _bounded(value: Any, column: str, template_id: str) -> str | None:
    text = _text(value).strip()
    limit = _LENGTHS[column]
    if limit is not None and len(text) > limit:
        label = column.replace("_", " ")
        raise _RowProblem(f"template {template_id}: the {label} is longer than {limit} characters")
    return text or None


# --- readers --------------------------------------------------------------------------


def _read_csv(path: Path) -> list[SheetRow]:
    raw = path.read_bytes()
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise InvalidInput(f"DLT file {str(path)!r} is not UTF-8 text") from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _guess_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[SheetRow] = []
    previous = 0
    try:
        # Physical line where each row starts, so quoted multi-line values keep count.
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            rows.append((line, cells))
    except csv.Error as exc:
        raise InvalidInput(f"{str(path)!r} line {reader.line_num}: {exc}") from None
    return rows


def _guess_delimiter(line: str) -> str:
    return max((",", ";", "\t"), key=line.count)


def _read_xlsx(path: Path) -> list[SheetRow]:
    from openpyxl import load_workbook  # only the XLSX import pays for importing openpyxl

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {str(path)!r} as an .xlsx workbook: {exc}") from None
    try:
        sheets = [
            [
                (number, tuple(cells))
                for number, cells in enumerate(sheet.iter_rows(values_only=True), 1)
            ]
            for sheet in workbook.worksheets
        ]
    finally:
        workbook.close()
    if not sheets:
        raise InvalidInput(f"{str(path)!r} has no worksheets")
    # The first sheet that holds DLT columns; else the first, for the error message.
    for rows in sheets:
        for _, cells in rows[:HEADER_SEARCH_ROWS]:
            columns = resolve_columns(_text(cell) for cell in cells)
            if "template_id" in columns and "content" in columns:
                return rows
    return sheets[0]
