"""Reading CRM record files, row by row: CSV or TSV, and JSON lines.

A row that cannot be read becomes a :class:`RowError` with its 1-based line and reading
goes on: a CSV quote that never closes is refused at the line that opened it and reading
resumes on the next line, so it cannot swallow the rows after it; a JSON line that is not
an object, nests deeper than :data:`MAX_DEPTH` or holds NaN or Infinity is refused alone.
"""

from __future__ import annotations

import csv
import json
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portalflow.pipelines.errors import InvalidInput

# How deeply a row's values may nest (a JSON line's object is depth 1).
MAX_DEPTH = 32
_JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}


@dataclass(frozen=True)
class RowError:
    """A row that was not loaded: its 1-based line in the file and what is wrong."""

    line: int
    message: str


# A source row: its line number and its values, or the error that made it unreadable.
SourceRow = tuple[int, Mapping[str, Any] | RowError]


def read_record_file(path: Path) -> Iterator[SourceRow]:
    """Rows of a CSV (header row first) or JSON-lines file, with their line numbers.

    The format comes from the suffix (.csv, .tsv, .jsonl, .ndjson) or, failing that, from
    the first character. A JSON line that does not parse is yielded as a ``RowError``.
    Raises ``InvalidInput`` for a file that cannot be read or whose format is unknown.
    """
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            head = handle.read(4096)
    except FileNotFoundError:
        raise InvalidInput(f"record file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{str(path)!r} is a directory, not a record file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read record file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"record file {str(path)!r} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix in _JSON_LINES_SUFFIXES:
        return _read_json_lines(path)
    if suffix in _CSV_SUFFIXES:
        return _read_csv(path, _CSV_SUFFIXES[suffix])
    first = head.lstrip()[:1]
    if first == "{":
        return _read_json_lines(path)
    if first == "[":
        raise InvalidInput(
            f"{str(path)!r} holds a JSON array; write one JSON object per line (JSON lines)"
        )
    first_line = head.splitlines()[0] if head else ""
    for delimiter in (",", "\t", ";"):
        if delimiter in first_line:
            return _read_csv(path, delimiter)
    raise InvalidInput(
        f"cannot tell the format of {str(path)!r}: name it .csv, .tsv, .jsonl or .ndjson"
    )


def _read_csv(path: Path, delimiter: str) -> Iterator[SourceRow]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        lines = _Lines(handle)
        try:
            rows = _csv_rows(lines, delimiter)
            header_row = next(rows, None)
            if header_row is None:
                return
            line, header_values = header_row
            if isinstance(header_values, RowError):
                raise InvalidInput(f"{str(path)!r} header: {header_values.message}")
            header = [name.strip() for name in header_values]
            _check_header(path, header)
            for line, values in rows:
                if isinstance(values, RowError):
                    yield line, values
                    continue
                if not any(value.strip() for value in values):
                    continue
                if len(values) > len(header):
                    yield (
                        line,
                        RowError(
                            line, f"has {len(values)} values but the header names {len(header)}"
                        ),
                    )
                    continue
                yield line, dict(zip(header, values, strict=False))
        except UnicodeDecodeError:
            raise InvalidInput(
                f"record file {str(path)!r} is not UTF-8 text (after line {lines.number})"
            ) from None


class _Lines:
    """The physical lines of a file, numbered; a refused row's later lines are read again."""

    def __init__(self, handle: Iterable[str]) -> None:
        self._source = iter(handle)
        self._again: deque[tuple[int, str]] = deque()
        self._read = 0
        self.number = 0
        self.row: list[tuple[int, str]] = []  # the lines the current row has taken so far

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._again:
            number, text = self._again.popleft()
        else:
            text = next(self._source)
            self._read += 1
            number = self._read
        self.number = number
        self.row.append((number, text))
        return text

    def start_row(self) -> None:
        self.row = []

    def read_again_after_first(self) -> int:
        """Put back all but the first line of the current row; returns that first line."""
        first = self.row[0][0] if self.row else self.number
        self._again.extendleft(reversed(self.row[1:]))
        self.row = []
        return first


def _csv_rows(lines: _Lines, delimiter: str) -> Iterator[tuple[int, list[str] | RowError]]:
    """Rows with the line each starts on; a malformed one is a RowError, not the rest lost."""
    while True:
        # strict: a stray quote is an error, never a value that swallows the lines after it.
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        while True:
            lines.start_row()
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                first = lines.read_again_after_first()
                yield first, RowError(first, _csv_problem(str(exc)))
                break  # a reader that failed mid-row cannot resume: start a fresh one
            yield lines.row[0][0], values


def _csv_problem(message: str) -> str:
    if message == "unexpected end of data":
        return "a quoted value opened on this line is never closed (checked up to the end)"
    if "field larger than field limit" in message:
        return "a quoted value opened on this line is never closed (or is over 128 KiB)"
    return f"is not valid CSV ({message}); the rows after it are read on"


def _check_header(path: Path, header: list[str]) -> None:
    if not header:
        return
    for position, name in enumerate(header, start=1):
        if not name:
            raise InvalidInput(f"{str(path)!r}: column {position} of the header has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InvalidInput(f"{str(path)!r}: column {name!r} appears twice in the header")
        seen.add(name)


def _read_json_lines(path: Path) -> Iterator[SourceRow]:
    with path.open("r", encoding="utf-8-sig") as handle:
        line = 0
        try:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
                except json.JSONDecodeError as exc:
                    yield line, RowError(line, f"not valid JSON ({exc.msg}, column {exc.colno})")
                    continue
                except RecursionError:
                    yield line, RowError(line, f"nests deeper than {MAX_DEPTH} levels")
                    continue
                except _UnstorableNumber as exc:
                    yield line, RowError(line, str(exc))
                    continue
                if not isinstance(value, dict):
                    yield line, RowError(line, "is not a JSON object")
                    continue
                yield line, value
        except UnicodeDecodeError:
            raise InvalidInput(
                f"record file {str(path)!r} is not UTF-8 text (near line {line + 1})"
            ) from None


class _UnstorableNumber(ValueError):
    """A JSON number the database cannot store (NaN, Infinity, or one that overflows)."""


def _no_constant(name: str) -> Any:
    raise _UnstorableNumber(f"holds {name}, which the database cannot store")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _UnstorableNumber(f"holds the number {text[:40]}, too large to store")
    return number
