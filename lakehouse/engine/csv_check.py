"""A CSV's dialect, and exact checks that DuckDB read every record of it.

DuckDB's sniffer guesses a dialect from a sample; a ragged line can make it guess another
delimiter, skip the rows before that line, or take the header for data, and the read then
"succeeds" with fewer rows. So the dialect is sniffed with `skip=0, ignore_errors=true` (which
finds the dialect of the well-formed rows), the file is then read strictly with that dialect,
and the rows DuckDB stored are compared with a count of the file's records made here: a
quote-aware newline count over the raw bytes (numpy, one pass), or Python's `csv` module when
the dialect has an escape character the fast count cannot follow.

Line numbers in messages are the file's physical lines. DuckDB's own ("CSV Error on Line: 4",
rejects tables) do not count newlines inside quoted fields; `physical_lines` translates them.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np

from lakehouse.engine.ingest_formats import open_bytes
from lakehouse.engine.names import sql_string
from lakehouse.errors import InvalidInput

_CHUNK = 1 << 24
_DELIMITERS = (",", "\t", ";", "|")
# Python's csv module refuses a field over 128 KiB (csv.Error, a crash); DuckDB reads fields up to its max_line_size.
# The limit is the process's: raised, never lowered, so any other reader in the process keeps working.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


@dataclasses.dataclass(frozen=True)
class CsvDialect:
    delimiter: str
    quote: str
    escape: str                        # the character escaping a quote inside quotes
    newline: str                       # as sniff_csv spells it: "\\n", "\\r\\n" or "\\r" (for our count)
    header: bool
    columns: tuple[tuple[str, str], ...]   # (name, sniffed type), in file order
    date_format: str | None
    timestamp_format: str | None

    def read_options(self) -> str:
        """read_csv options for this dialect (strict; nothing skipped, no comment lines, "" stays "")."""
        opts = [f"delim={sql_string(self.delimiter)}", f"quote={sql_string(self.quote)}",
                f"escape={sql_string(self.escape)}", f"header={str(self.header).lower()}",
                "skip=0", "comment=''", "strict_mode=true", "allow_quoted_nulls=false", "auto_detect=false"]
        # No new_line=: DuckDB 1.5.5 finds the line ends itself, and new_line='\\r\\n' with strict_mode
        # reads a CRLF file as zero rows.
        return ", ".join(opts)

    def python(self) -> dict[str, Any]:
        """The same dialect for Python's csv module."""
        if self.escape == self.quote:
            return {"delimiter": self.delimiter, "quotechar": self.quote, "doublequote": True}
        return {"delimiter": self.delimiter, "quotechar": self.quote, "escapechar": self.escape, "doublequote": False}


def sniff(cur: duckdb.DuckDBPyConnection, path: Path, *, compression: str | None,
          delimiter: str | None, header: bool | None, date_format: str | None,
          timestamp_format: str | None) -> CsvDialect:
    """DuckDB's sniff of `path` as a strict CSV: no leading rows skipped, no comment lines."""
    opts = ["skip=0", "ignore_errors=true", "comment=''", "allow_quoted_nulls=false"]
    if compression:
        opts.append(f"compression={sql_string(compression)}")
    if delimiter:
        opts.append(f"delim={sql_string(delimiter)}")
    if header is not None:
        opts.append(f"header={str(header).lower()}")
    if date_format:
        opts.append(f"dateformat={sql_string(date_format)}")
    if timestamp_format:
        opts.append(f"timestampformat={sql_string(timestamp_format)}")
    row = cur.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, HasHeader, Columns, DateFormat, TimestampFormat "
        f"FROM sniff_csv(?, {', '.join(opts)})", [str(path)]).fetchone()
    delim, quote, escape, newline, has_header, cols, dfmt, tfmt = row
    # A sample without quotes says "no quote", but a quoted field may come later ("a, b" after
    # 20,000 rows); '"' reads unquoted files the same (a quote inside a field stays literal).
    quote = '"' if quote == "(empty)" else quote
    escape = quote if escape == "(empty)" else escape  # RFC 4180 doubling ("a""b"), DuckDB's default
    return CsvDialect(delim, quote, escape, newline, bool(has_header),
                      tuple((c["name"], c["type"]) for c in cols), dfmt, tfmt)


def check_header(path: Path, name: str, dialect: CsvDialect, compression: str | None, *,
                 header_given: bool) -> None:
    """Refuse what the sniffer would hide about line 1: duplicate names (it renames them), a wrong
    delimiter (one column while another delimiter splits the line), and a header that is a guess."""
    first = _first_record(path, dialect, compression)
    if not first:
        _check_blank(path, name, compression)
    if len(dialect.columns) == 1:
        for candidate in _DELIMITERS:
            if candidate != dialect.delimiter and candidate in "".join(first):
                raise_first_ragged(path, name, dataclasses.replace(dialect, delimiter=candidate), compression)
    if not dialect.header:
        return
    if not header_given and all(t == "VARCHAR" for _, t in dialect.columns):
        # Every column is text, so nothing tells a header from a first record: a file of names would
        # silently lose its first name. The caller says which it is. Ragged or non-UTF-8 rows also
        # leave the sniffer nothing but text: those are the better messages.
        raise_first_ragged(path, name, dialect, compression)
        _check_utf8(path, name, compression)
        shown = dialect.delimiter.join(first)[:60]
        raise InvalidInput(f"cannot tell whether line 1 of {name} ({shown!r}) is a header or data: every column "
                           "is text; pass header=True or header=False", code="header_ambiguous")
    seen: dict[str, int] = {}
    for i, field in enumerate(first, 1):
        low = field.strip().lower()
        if low in seen:
            raise InvalidInput(f"duplicate column name {field.strip()!r} in {name} (columns {seen[low]} and {i})",
                               code="duplicate_column")
        seen[low] = i


def _check_blank(path: Path, name: str, compression: str | None) -> None:
    """A file that is nothing but blank lines is empty; one that starts with a blank line has no header."""
    with open_text(path, compression) as fh:
        if not any(line.strip() for line in fh):
            raise InvalidInput(f"{name} holds only blank lines: nothing to ingest", code="empty_file")
    raise InvalidInput(f"line 1 of {name} is blank: a CSV starts with its header or first record", code="bad_file",
                       line=1)


def _check_utf8(path: Path, name: str, compression: str | None) -> None:
    with open_bytes(path, compression) as fh:
        for line_no, line in enumerate(io.BufferedReader(fh) if compression else fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{name} is not valid UTF-8 (line {line_no})", code="bad_encoding",
                                   line=line_no) from None


def _first_record(path: Path, dialect: CsvDialect, compression: str | None) -> list[str]:
    with open_text(path, compression) as fh:
        return next(csv.reader(fh, **dialect.python()), [])


@contextlib.contextmanager
def open_text(path: Path, compression: str | None) -> Iterator[IO[str]]:
    """The file as text for Python's csv module (undecodable bytes replaced: DuckDB judges encoding)."""
    with io.TextIOWrapper(open_bytes(path, compression), encoding="utf-8-sig", errors="replace", newline="") as fh:
        yield fh


def _records(path: Path, dialect: CsvDialect, compression: str | None) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) of every record, as DuckDB counts them: a blank line is a record
    (one NULL) in a one-column file and nothing otherwise."""
    single = len(dialect.columns) == 1
    with open_text(path, compression) as fh:
        reader = csv.reader(fh, **dialect.python())
        start = 1
        for row in reader:
            if row or single:
                yield start, row or [""]
            start = reader.line_num + 1


def raise_first_ragged(path: Path, name: str, dialect: CsvDialect, compression: str | None) -> None:
    """InvalidInput naming the first line whose field count differs from line 1's; None if none does."""
    width = None
    for line, row in _records(path, dialect, compression):
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InvalidInput(f"ragged CSV: line {line} of {name} has {len(row)} fields, expected {width}",
                               code="ragged_rows", line=line)


def line_of_record(path: Path, dialect: CsvDialect, compression: str | None, record: int,
                   width: int | None = None) -> int | None:
    """The first physical line of data record `record` (1-based, after the header), counting only
    records of `width` fields when given (the others were skipped)."""
    n = -1 if dialect.header else 0
    for line, row in _records(path, dialect, compression):
        if width is None or len(row) == width or n < 0:
            n += 1
            if n == record:
                return line
    return None


def physical_lines(path: Path, dialect: CsvDialect, compression: str | None, duck_lines: set[int]) -> dict[int, int]:
    """DuckDB's line numbers (which skip newlines inside quoted fields) as the file's physical lines."""
    found: dict[int, int] = {}
    with open_text(path, compression) as fh:
        reader = csv.reader(fh, **dialect.python())
        start, inside = 1, 0
        for _ in reader:
            if start - inside in duck_lines:
                found[start - inside] = start
                if len(found) == len(duck_lines):
                    break
            inside += reader.line_num - start  # the newlines within this record's quoted fields
            start = reader.line_num + 1
    return {line: found.get(line, line) for line in duck_lines}


def count_records(path: Path, dialect: CsvDialect, compression: str | None) -> int | None:
    """The number of data records in the file (header excluded), counted without DuckDB.

    Newlines outside quotes, by quote parity over the raw bytes (a doubled quote inside a quoted field
    toggles twice, so parity holds). It cannot follow a backslash-style escape, an unbalanced quote or a
    quote inside an unquoted field (`5'10"`); then it returns None and the caller asks
    `count_records_slow`.
    """
    if dialect.escape != dialect.quote:
        return None
    newline = ord("\r") if dialect.newline == "\\r" else ord("\n")
    quote = ord(dialect.quote)
    parity = lines = blank = 0
    offset, last_newline, prev_byte = 0, -1, 0
    with open_bytes(path, compression) as fh:
        while chunk := fh.read(_CHUNK):
            a = np.frombuffer(chunk, dtype=np.uint8)
            ends = np.flatnonzero(a == newline)
            quotes = np.flatnonzero(a == quote)
            ends = ends[((np.searchsorted(quotes, ends) + parity) & 1) == 0]
            parity = (parity + quotes.size) & 1
            if ends.size:
                absolute = ends + offset
                starts = np.concatenate(([last_newline + 1], absolute[:-1] + 1))
                length = absolute - starts
                before = np.where(ends > 0, a[np.maximum(ends - 1, 0)], prev_byte)
                blank += int(np.count_nonzero((length == 0) | ((length == 1) & (before == ord("\r")))))
                lines += ends.size
                last_newline = int(absolute[-1])
            offset += len(chunk)
            prev_byte = int(a[-1])
    if parity:
        return None
    if offset > last_newline + 1:
        lines += 1  # a last line without a newline
    records = lines if len(dialect.columns) == 1 else lines - blank
    return records - (1 if dialect.header and records else 0)


def count_records_slow(path: Path, dialect: CsvDialect, compression: str | None) -> int:
    """`count_records` by Python's csv module: slower, follows any escape."""
    n = sum(1 for _ in _records(path, dialect, compression))
    return max(n - (1 if dialect.header else 0), 0)
