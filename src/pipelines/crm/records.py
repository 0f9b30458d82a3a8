"""Importing CRM records: validated per row, upserted in batches.

The rows come from :func:`.record_files.read_record_file` (CSV or JSON lines) or any
iterable of (line, values). A bad row never stops the import: it becomes a
:class:`.record_files.RowError` with its line number and the good rows still load. Values
the database cannot store (a NUL character, a lone surrogate, NaN or Infinity, nesting
deeper than ``MAX_DEPTH``) are refused per row, so they never fail a whole batch.

Writes are set-based: per batch, one SELECT of the existing records, one for the owners,
one bulk INSERT and one bulk UPDATE.

Example::

    report = import_records(session, org.id, read_record_file(Path("contacts.csv")))
    session.commit()
    print(report.created, report.updated, [e.line for e in report.errors])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, CrmUser, utcnow
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy import orgs

from .record_files import MAX_DEPTH, RowError, SourceRow

DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 5000

TEXT_FIELDS = ("module", "first_name", "last_name", "email", "phone", "processing_basis")
BOOL_FIELDS = (
    "approval_locked",
    "review_locked",
    "consent_given",
    "in_recycle_bin",
    "deleted",
)
# Every column an import may change on an existing record.
UPDATABLE_COLUMNS = (*TEXT_FIELDS, *BOOL_FIELDS, "owner_id", "fields")
RECOGNISED_FIELDS = frozenset({"crm_id", "id", "owner_email", *TEXT_FIELDS, *BOOL_FIELDS})


_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.created + self.updated


class _RowProblem(Exception):
    """Raised while validating one row; becomes that row's RowError."""


@dataclass
class _Row:
    line: int
    crm_id: str
    values: dict[str, Any]  # recognised columns present in the row (owner_id not resolved)
    owner_email: str | None
    has_owner: bool
    extras: dict[str, Any]


def import_records(
    session: Session,
    org_id: int,
    rows: Iterable[SourceRow],
    *,
    default_module: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportReport:
    """Upsert records by ``(org_id, crm_id)`` from ``rows`` (flushed, never committed).

    Only the fields a row carries are changed on an existing record, and its extra
    fields are merged into ``fields``. A new record needs a module: the row's, else
    ``default_module``. An empty value clears a text field; an empty flag leaves the flag
    as it was (``False`` on a new record). Raises ``NotFound`` for an unknown org.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
    orgs.get_org(session, org_id)
    default_module = _clean_text(default_module) if default_module is not None else None
    report = ImportReport()
    batch: list[_Row] = []
    for line, raw in rows:
        if isinstance(raw, RowError):
            report.errors.append(raw)
            continue
        try:
            batch.append(_parse_row(line, raw))
        except _RowProblem as problem:
            report.errors.append(RowError(line, str(problem)))
            continue
        if len(batch) >= batch_size:
            _write_batch(session, org_id, batch, report, default_module)
            batch = []
    if batch:
        _write_batch(session, org_id, batch, report, default_module)
    report.errors.sort(key=lambda error: error.line)
    return report


def _check_storable(raw: Mapping[str, Any]) -> None:
    """Refuse what the database cannot store: NUL, lone surrogates, too deep a nesting."""
    stack: list[tuple[str, Any, int]] = [(str(key), value, 1) for key, value in raw.items()]
    for key in raw:
        _check_text(str(key), f"field name {str(key)[:40]!r}")
    while stack:
        name, value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, f"field {name}")
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise _RowProblem(f"field {name} nests deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, f"a key inside field {name}")
                stack.append((name, item, depth + 1))


def _check_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise _RowProblem(f"{what} holds a NUL character (\\0), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _RowProblem(f"{what} holds a lone surrogate, which is not valid text") from None


def _parse_row(line: int, raw: Mapping[str, Any]) -> _Row:
    _check_storable(raw)
    recognised: dict[str, tuple[str, Any]] = {}
    extras: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).strip()
        if not name:
            raise _RowProblem("has a field with an empty name")
        canonical = name.lower().replace(" ", "_").replace("-", "_")
        if canonical in RECOGNISED_FIELDS:
            if canonical in recognised:
                raise _RowProblem(
                    f"field {canonical} is given twice "
                    f"(as {recognised[canonical][0]!r} and {name!r})"
                )
            recognised[canonical] = (name, value)
        elif name == "fields" and isinstance(value, dict):
            # A JSON export of our own records nests the extra fields.
            extras.update({str(k): _clean_extra(v) for k, v in value.items()})
        else:
            extras[name] = _clean_extra(value)

    values: dict[str, Any] = {}
    for name, (_, value) in recognised.items():
        if name in BOOL_FIELDS:
            flag = _parse_bool(name, value)
            if flag is not None:
                values[name] = flag
        elif name != "id":
            values[name] = _text(name, value)

    crm_id = values.pop("crm_id", None)
    if crm_id is None and "id" in recognised:
        crm_id = _text("id", recognised["id"][1])
    elif "id" in recognised:
        extras[recognised["id"][0]] = _clean_extra(recognised["id"][1])
    if crm_id is None:
        raise _RowProblem("field crm_id is missing")
    if values.get("module") is None:
        # An existing record keeps its module; a new one needs one (checked per batch).
        values.pop("module", None)

    has_owner = "owner_email" in values
    owner_email = values.pop("owner_email", None)
    return _Row(line, crm_id, values, owner_email, has_owner, extras)


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _RowProblem(f"field {name} must be text, not {type(value).__name__}")
    text = _clean_text(str(value))
    column = "crm_id" if name == "id" else name
    limit = _LENGTHS.get(column)
    if text is not None and limit is not None and len(text) > limit:
        raise _RowProblem(f"field {name} is longer than {limit} characters")
    return text


def _clean_text(value: str) -> str | None:
    value = value.strip()
    return value or None


def _clean_extra(value: Any) -> Any:
    return _clean_text(value) if isinstance(value, str) else value


def _parse_bool(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _RowProblem(f"field {name} must be true/false/yes/no/1/0, not {value!r}")


def _write_batch(
    session: Session,
    org_id: int,
    batch: list[_Row],
    report: ImportReport,
    default_module: str | None,
) -> None:
    owners = _resolve_owners(session, org_id, batch)
    existing = _existing(session, org_id, batch)
    # Keyed by crm_id: a crm_id repeated in the file is applied in order, last one wins.
    new: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    for row in batch:
        if not _set_owner(row, owners, org_id, report):
            continue
        if row.crm_id in new:
            _apply(new[row.crm_id], row)
            report.updated += 1
        elif row.crm_id in existing:
            target = changed.setdefault(row.crm_id, existing[row.crm_id])
            _apply(target, row)
            report.updated += 1
        elif "module" not in row.values and default_module is None:
            report.errors.append(
                RowError(row.line, "field module is missing (needed to create a record)")
            )
        else:
            record = _new_record(org_id, row.crm_id, default_module)
            new[row.crm_id] = _apply(record, row)
            report.created += 1

    if new:
        # render_nulls: the ORM would otherwise drop None keys and split the executemany
        # wherever the pattern of empty values changes.
        session.execute(insert(CrmRecord).execution_options(render_nulls=True), list(new.values()))
    if changed:
        now = utcnow()
        session.execute(
            update(CrmRecord),
            [
                {"id": values["id"], "updated_at": now}
                | {name: values[name] for name in UPDATABLE_COLUMNS}
                for values in changed.values()
            ],
        )
    session.flush()


def _existing(session: Session, org_id: int, batch: list[_Row]) -> dict[str, dict[str, Any]]:
    """crm_id -> the updatable columns of each record of the batch already in the org."""
    return {
        row.crm_id: dict(row._mapping)
        for row in session.execute(
            select(CrmRecord.id, CrmRecord.crm_id, *(_column(name) for name in UPDATABLE_COLUMNS))
            .where(CrmRecord.org_id == org_id)
            .where(CrmRecord.crm_id.in_({row.crm_id for row in batch}))
        )
    }


def _set_owner(row: _Row, owners: dict[str, int], org_id: int, report: ImportReport) -> bool:
    """Put the row's owner in its values; False (a row error) for an unknown owner email."""
    if row.has_owner and row.owner_email is not None:
        owner_id = owners.get(row.owner_email.lower())
        if owner_id is None:
            report.errors.append(
                RowError(
                    row.line,
                    f"field owner_email: no CRM user {row.owner_email!r} in org {org_id}",
                )
            )
            return False
        row.values["owner_id"] = owner_id
    elif row.has_owner:
        row.values["owner_id"] = None
    return True


def _resolve_owners(session: Session, org_id: int, batch: list[_Row]) -> dict[str, int]:
    """Lower-cased owner email -> CRM user id, for the owners this batch names."""
    wanted = {row.owner_email.lower() for row in batch if row.owner_email is not None}
    if not wanted:
        return {}
    email = func.lower(CrmUser.email)
    return {
        address: user_id
        for user_id, address in session.execute(
            select(CrmUser.id, email).where(CrmUser.org_id == org_id, email.in_(wanted))
        )
    }


def _new_record(org_id: int, crm_id: str, module: str | None) -> dict[str, Any]:
    # Every insert carries every column, so the whole batch is one executemany.
    record: dict[str, Any] = {"org_id": org_id, "crm_id": crm_id, "updated_at": utcnow()}
    record |= dict.fromkeys(TEXT_FIELDS)
    record["module"] = module
    record |= dict.fromkeys(BOOL_FIELDS, False)
    record |= {"owner_id": None, "fields": {}}
    return record


def _apply(target: dict[str, Any], row: _Row) -> dict[str, Any]:
    target.update(row.values)
    if row.extras:
        target["fields"] = {**(target.get("fields") or {}), **row.extras}
    return target


def _column(name: str) -> Any:
    return getattr(CrmRecord, name)


# Checked per row, so one over-long value is a row error and not a failed batch.
_LENGTHS: dict[str, int] = {
    name: CrmRecord.__table__.c[name].type.length for name in ("crm_id", *TEXT_FIELDS)
} | {"owner_email": CrmUser.__table__.c["email"].type.length}
