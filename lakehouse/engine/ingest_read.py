"""How ingest reads staged files: the scan (DuckDB table functions) and the column plan.

A `Reading` is one way to read the files: `scan` yields the file's columns (CSV always as
VARCHAR text, JSON/Parquet typed), and each `Column` says which type it is stored as and how the
conversion is checked (see `exact_types`). `select()` is the guarded SELECT every write uses;
`diagnose()` runs once a guard has fired, to say where and why, and what type would hold the
column exactly.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from lakehouse.engine import csv_check, exact_types
from lakehouse.engine.csv_check import CsvDialect
from lakehouse.engine.ingest_formats import open_bytes
from lakehouse.engine.names import quote_ident, sql_string
from lakehouse.engine.sources import Staged
from lakehouse.errors import InvalidInput

RAGGED_MODES = ("error", "pad", "skip_and_report")
_MERGEABLE = {frozenset({"BIGINT", "DOUBLE"}): "DOUBLE"}


@dataclasses.dataclass
class Column:
    name: str                  # as stored in the dataset
    source: str                # as the scan names it
    read: str                  # the type the scan yields
    type: str                  # the type stored
    check: str = "none"        # "none", "text" (exact text, see exact_types.text_ok) or "value" (round trip)
    fmt: str | None = None     # strptime format of a DATE/TIMESTAMP read from text
    sniffed: str | None = None  # what DuckDB's sniffer proposed, when `type` differs
    why: str | None = None     # why it differs

    def ok(self) -> str:
        """SQL predicate: this row's value converts exactly."""
        src = quote_ident(self.source)
        if self.check == "text":
            return exact_types.text_ok(src, self.type, self.fmt)
        if self.check == "value":
            return exact_types.value_ok(src, self.read, self.type)
        return "true"

    def guard(self, tag: int) -> str:
        """SQL: the value as stored, or an error tagged `tag` where `ok()` is false."""
        src = quote_ident(self.source)
        if self.check == "text":
            return exact_types.text_guard(src, self.type, self.fmt, tag)
        if self.check == "value":
            return exact_types.value_guard(src, self.read, self.type, tag)
        return src


@dataclasses.dataclass
class Reading:
    staged: Staged
    calls: list[str]                       # one table-function call per file (Parquet: one for all)
    columns: list[Column]
    file_columns: list[list[str]] | None = None  # the columns each call yields, in order (not Parquet)
    dialects: list[CsvDialect] | None = None   # CSV only, one per file
    header: bool | None = None             # CSV only: whether line 1 was taken as the header
    rejects: str | None = None             # on_ragged="skip_and_report": the temp table of skipped lines

    @property
    def scan(self) -> str:
        if len(self.calls) == 1:
            return f"SELECT * FROM {self.calls[0]}"
        return " UNION ALL BY NAME ".join(f"SELECT * FROM {c}" for c in self.calls)

    def select(self, key: str | None = None) -> str:
        """The guarded SELECT of the stored columns; a NULL `key` fires guard number len(columns)."""
        parts = []
        for i, c in enumerate(self.columns):
            expr = c.guard(i)
            if key is not None and c.name.lower() == key.lower():
                expr = f"CASE WHEN {quote_ident(c.source)} IS NULL THEN error('{exact_types.GUARD_TAG}" \
                       f"{len(self.columns)}') ELSE {expr} END"
            parts.append(f"{expr} AS {quote_ident(c.name)}")
        return f"SELECT {', '.join(parts)} FROM ({self.scan})"

    def notes(self) -> list[dict[str, str]]:
        return [{"column": c.name, "stored": c.type, "sniffed": c.sniffed, "why": c.why}
                for c in self.columns if c.why]

    # -- after a guard fired ---------------------------------------------------------------
    def diagnose(self, cur: duckdb.DuckDBPyConnection, key: str | None) -> list[Failure]:
        """Every column whose guard fails somewhere: how often, the first failing record, and (for
        text) the narrowest type that holds the column exactly."""
        checked = [(i, c) for i, c in enumerate(self.columns) if c.check != "none"]
        key_col = next((c for c in self.columns if key is not None and c.name.lower() == key.lower()), None)
        aggs: list[str] = []
        widths = []
        for _, c in checked:
            bad = f"NOT ({c.ok()})"
            src = quote_ident(c.source)
            infer = exact_types.infer_aggregates(src) if c.read == "VARCHAR" else []
            aggs += [f"count(*) FILTER (WHERE {bad})",
                     f"min({{'f': _lh_file, 'o': _lh_ord, 'v': CAST({src} AS VARCHAR)}}) FILTER (WHERE {bad})", *infer]
            widths.append(len(infer))
        if key_col is not None:
            aggs += [f"count(*) FILTER (WHERE {quote_ident(key_col.source)} IS NULL)",
                     f"min({{'f': _lh_file, 'o': _lh_ord, 'v': NULL::VARCHAR}}) "
                     f"FILTER (WHERE {quote_ident(key_col.source)} IS NULL)"]
        row = list(cur.execute(f"SELECT {', '.join(aggs)} FROM ({self._numbered()})").fetchone())
        failures = []
        for (i, c), width in zip(checked, widths):
            count, first = row.pop(0), row.pop(0)
            inferred = exact_types.infer_type(tuple(row[:width])) if width else None
            del row[:width]
            if count:
                failures.append(Failure(i, c, count, first, inferred))
        if key_col is not None and row[0]:
            failures.append(Failure(len(self.columns), key_col, row[0], row[1], None))
        return failures

    def _numbered(self) -> str:
        """The scan with `_lh_file` (index into staged.paths) and `_lh_ord` (1-based record number)."""
        if self.file_columns is None:  # Parquet: the reader numbers rows itself
            files = _file_list(self.staged)
            return (f"SELECT * EXCLUDE (_lh_filename, file_row_number), "
                    f"list_position({files}, _lh_filename) - 1 AS _lh_file, file_row_number + 1 AS _lh_ord "
                    f"FROM read_parquet({files}, union_by_name=true, filename='_lh_filename', file_row_number=true)")
        branches = []
        for i, (call, cols) in enumerate(zip(self.calls, self.file_columns)):
            alias = ", ".join(quote_ident(n) for n in [*cols, "_lh_ord"])
            branches.append(f"SELECT *, {i} AS _lh_file FROM {call} WITH ORDINALITY AS _lh_t({alias})")
        return " UNION ALL BY NAME ".join(branches)

    def where(self, failure: Failure) -> str:
        """'line 12 of x.csv' (or 'record 12' where lines cannot be told) for a failure's first record."""
        f, o = failure.first["f"], failure.first["o"]
        path, name = self.staged.paths[f], self.staged.names[f]
        line = None
        if self.dialects is not None:
            # Skipped ragged lines are not numbered by the scan: count only records of the header's width.
            width = len(self.file_columns[f]) if self.rejects else None
            line = csv_check.line_of_record(path, self.dialects[f], self.staged.compression, o, width)
        elif self.staged.format == "ndjson":
            line = _nth_json_line(path, self.staged.compression, o)
        return f"line {line} of {name}" if line else f"record {o} of {name}"


@dataclasses.dataclass
class Failure:
    index: int            # guard tag
    column: Column
    count: int
    first: dict[str, Any]  # {'f': file index, 'o': record number, 'v': the value as text}
    inferred: str | None   # for text columns: the narrowest exact type


def _file_list(staged: Staged) -> str:
    return "[" + ", ".join(sql_string(str(p)) for p in staged.paths) + "]"


def _nth_json_line(path: Path, compression: str | None, record: int) -> int | None:
    with csv_check.open_text(path, compression) as fh:
        n = 0
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                n += 1
                if n == record:
                    return line_no
    return None


# -- CSV --------------------------------------------------------------------------------
def read_csv(cur: duckdb.DuckDBPyConnection, staged: Staged, *, header: bool | None, on_ragged: str,
             date_format: str | None, timestamp_format: str | None,
             appending: bool) -> list[CsvDialect]:
    """Sniff and check every file's dialect. `appending`: the header is judged against the dataset's
    columns later, not guessed here."""
    if on_ragged not in RAGGED_MODES:
        raise InvalidInput(f"unknown on_ragged {on_ragged!r}; use one of {', '.join(RAGGED_MODES)}",
                           code="invalid_option")
    if on_ragged == "skip_and_report" and len(staged.paths) > 1:
        raise InvalidInput("on_ragged='skip_and_report' reports line numbers of one file: ingest the files one "
                           "at a time", code="invalid_option")
    delimiter = "\t" if staged.format == "tsv" else None
    dialects = []
    for path, name in zip(staged.paths, staged.names):
        dialect = csv_check.sniff(cur, path, compression=staged.compression, delimiter=delimiter,
                                  header=header, date_format=date_format, timestamp_format=timestamp_format)
        csv_check.check_header(path, name, dialect, staged.compression, header_given=header is not None or appending)
        dialects.append(dialect)
    for dialect, name in zip(dialects[1:], staged.names[1:]):
        if dialect.header != dialects[0].header:
            raise InvalidInput(f"{name} {'has' if dialect.header else 'has no'} header line but {staged.names[0]} "
                               f"{'has' if dialects[0].header else 'has no'}: pass header= or ingest them apart",
                               code="header_mismatch")
    return dialects


def csv_reading(staged: Staged, dialects: list[CsvDialect], *, stored: list[dict[str, str]] | None,
                on_ragged: str, date_format: str | None, timestamp_format: str | None,
                header_given: bool | None, overrides: dict[str, tuple[str, str]]) -> Reading:
    """The Reading of CSV files: every field read as text, converted to the sniffed (create) or the
    dataset's (append) type through a guard."""
    header = dialects[0].header
    file_columns = [[n for n, _ in d.columns] for d in dialects]
    if stored is not None:
        header = _append_header(staged, dialects[0], stored, header_given)
        if not header:
            file_columns = [[c["name"] for c in stored] for _ in dialects]
            if any(len(d.columns) != len(stored) for d in dialects):
                raise InvalidInput(f"{staged.names[0]} has {len(dialects[0].columns)} fields per line; dataset "
                                   f"has {len(stored)} columns", code="schema_mismatch")
        columns = _append_columns(file_columns, stored, date_format, timestamp_format)
    else:
        columns = _create_columns(dialects, date_format, timestamp_format, overrides)
    rejects = f"lh_rejects_{uuid.uuid4().hex}" if on_ragged == "skip_and_report" else None
    calls = []
    for path, dialect, names in zip(staged.paths, dialects, file_columns):
        opts = dataclasses.replace(dialect, header=header).read_options()
        if staged.compression:
            opts += f", compression={sql_string(staged.compression)}"
        if on_ragged == "pad":
            opts += ", null_padding=true"
        if rejects:
            opts += f", ignore_errors=true, store_rejects=true, rejects_table={sql_string(rejects)}, " \
                    f"rejects_scan={sql_string(rejects + '_scan')}"
        spec = ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n in names)
        calls.append(f"read_csv({sql_string(str(path))}, {opts}, columns={{{spec}}})")
    return Reading(staged, calls, columns, file_columns, dialects, header, rejects)


def _append_header(staged: Staged, dialect: CsvDialect, stored: list[dict[str, str]], given: bool | None) -> bool:
    """Whether line 1 of a file appended to `stored` is its header: given, or it names stored columns."""
    if given is not None:
        return given
    known = {c["name"].lower() for c in stored}
    names = [n.lower() for n, _ in dialect.columns]
    if dialect.header and set(names) <= known:
        return True
    if dialect.header:
        unknown = next(n for n, _ in dialect.columns if n.lower() not in known)
        raise InvalidInput(f"column {unknown!r} is not in dataset (columns: {_names(stored)})",
                           code="schema_mismatch")
    raise InvalidInput(f"line 1 of {staged.names[0]} does not name the dataset's columns ({_names(stored)}); pass "
                       "header=False to append header-less rows in the dataset's column order",
                       code="missing_header")


def _create_columns(dialects: list[CsvDialect], date_format: str | None, timestamp_format: str | None,
                    overrides: dict[str, tuple[str, str]]) -> list[Column]:
    merged: dict[str, Column] = {}
    for dialect in dialects:
        for name, sniffed in dialect.columns:
            col = merged.get(name.lower())
            if col is None:
                merged[name.lower()] = _text_column(name, sniffed, dialect, date_format, timestamp_format)
            elif col.type != sniffed and col.sniffed is None:
                col.type = _MERGEABLE.get(frozenset({col.type, sniffed}), "VARCHAR")
    columns = list(merged.values())
    for col in columns:
        if col.name.lower() in overrides:
            col.sniffed, col.type, col.why = col.sniffed or col.type, *overrides[col.name.lower()]
            col.fmt = None
    return columns


def _text_column(name: str, sniffed: str, dialect: CsvDialect, date_format: str | None,
                 timestamp_format: str | None) -> Column:
    col = Column(name, name, "VARCHAR", sniffed, "text")
    if sniffed == "DATE" or sniffed.startswith(("TIMESTAMP", "TIME")):
        given = date_format if sniffed == "DATE" else timestamp_format
        found = dialect.date_format if sniffed == "DATE" else dialect.timestamp_format
        col.fmt = given or found
        if not given and exact_types.ambiguous_format(found):
            col.type, col.sniffed, col.fmt = "VARCHAR", sniffed, None
            kind = "dates" if sniffed == "DATE" else "timestamps"
            option = "date_format" if sniffed == "DATE" else "timestamp_format"
            col.why = (f"{kind} in the form {found} could be day/month or month/day: kept as text; "
                       f"pass {option}= to store them as {sniffed}")
    return col


def _append_columns(file_columns: list[list[str]], stored: list[dict[str, str]], date_format: str | None,
                    timestamp_format: str | None) -> list[Column]:
    known = {c["name"].lower(): c for c in stored}
    columns: dict[str, Column] = {}
    for names in file_columns:
        for name in names:
            target = known.get(name.lower())
            if target is None:
                raise InvalidInput(f"column {name!r} is not in dataset (columns: {_names(stored)})",
                                   code="schema_mismatch")
            fmt = date_format if target["type"] == "DATE" else (
                timestamp_format if target["type"].startswith(("TIMESTAMP", "TIME")) else None)
            columns.setdefault(name.lower(), Column(target["name"], name, "VARCHAR", target["type"], "text", fmt))
    return list(columns.values())


# -- JSON and Parquet ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Typed:
    """What a JSON or Parquet file holds: its columns and types, and the reader options."""

    columns: list[tuple[str, str]]
    options: str  # read_json options ("" for Parquet)


def describe_typed(cur: duckdb.DuckDBPyConnection, staged: Staged, *, date_format: str | None,
                   timestamp_format: str | None) -> Typed:
    """The columns of JSON/NDJSON (every record sampled, so every key is a column and no later value is
    coerced to an early guess: measured +0.85 s on 500K records, 60 MB) or Parquet (typed by the file)."""
    files = _file_list(staged)
    if staged.format == "parquet":
        described = _describe(cur, f"read_parquet({files}, union_by_name=true)")
        _check_names(described, staged)
        return Typed(described, "")
    style = "newline_delimited" if staged.format == "ndjson" else "auto"
    opts = f"format={sql_string(style)}"
    if staged.compression:
        opts += f", compression={sql_string(staged.compression)}"
    if date_format:
        opts += f", dateformat={sql_string(date_format)}"
    if timestamp_format:
        opts += f", timestampformat={sql_string(timestamp_format)}"
    described = _describe(cur, f"read_json({files}, {opts}, union_by_name=true, sample_size=-1)")
    if len(described) == 1 and described[0][0] == "json" and described[0][1].startswith("MAP("):
        # Records with more than 200 keys collapse into one MAP column: every key should be a column.
        opts += ", map_inference_threshold=-1"
        described = _describe(cur, f"read_json({files}, {opts}, union_by_name=true, sample_size=-1)")
    _check_names(described, staged)
    return Typed(described, opts)


# A JSON number DuckDB's reader turns into a DOUBLE before anything sees its text: a run of 17 or more number
# characters (every decimal of <= 15 significant digits survives a DOUBLE; 16 need 17 characters with the point).
_LONG_NUMBER = re.compile(rb"[0-9.eE+-]{17,}")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_CHUNK = 1 << 24


def check_json_numbers(staged: Staged) -> None:
    """Every JSON file's numbers survive DuckDB's reader (see `_check_json_numbers`); nothing to do for Parquet."""
    if staged.format in ("json", "ndjson"):
        for path, name in zip(staged.paths, staged.names):
            _check_json_numbers(path, name, staged.compression)


def _check_json_numbers(path: Path, name: str, compression: str | None) -> None:
    """InvalidInput where a JSON number has more digits than a DOUBLE keeps. DuckDB's JSON reader parses every
    number with a fraction or exponent as a DOUBLE, even when the column is read as text, so
    12345678901234567890.5 would be stored as 1.2345678901234567e+19 and no later check could tell (integers are
    read as their text). One pass over the bytes: only runs of 17+ number characters are looked at, and only one
    that a DOUBLE changes is looked up in its line (JSON strings hold no raw newline) to see it is not in a string.
    Measured +2 to +3.6 s on an ingest of 76 MB of NDJSON with a 16-digit float in every record (5-7 s without,
    on 2 busy cores): ingest runs it on its own thread while DuckDB reads."""
    with open_bytes(path, compression) as fh:
        line, data = 1, bytearray()
        while True:
            chunk = fh.read(_CHUNK)
            data += chunk  # in place: a minified file is one line of many chunks (bytes + bytes copied it all each time)
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            if chunk and cut == 0:  # no line end yet: read on
                continue
            for m in _LONG_NUMBER.finditer(data, 0, cut):
                token = m.group().decode()
                lost = _lost_digits(token)
                if lost is None:
                    continue
                start = data.rfind(b"\n", 0, m.start()) + 1
                stop = data.find(b"\n", m.end())
                text = data[start:stop if stop >= 0 else len(data)].decode("utf-8", "replace")
                if token in _JSON_NUMBER.findall(_JSON_STRING.sub('""', text)):
                    at = line + data.count(b"\n", 0, m.start())
                    raise InvalidInput(
                        f"line {at} of {name}: the number {token} has more digits than DuckDB's JSON reader keeps "
                        f"(it would be stored as {lost}); write it as a string (\"{token}\") to store it exactly",
                        code="inexact_number", line=at)
            if not chunk:
                return
            line += data.count(b"\n", 0, cut)
            del data[:cut]


def _lost_digits(token: str) -> str | None:
    """What a DOUBLE makes of the real number `token` when that is another number (None: the same, or no real)."""
    if "." not in token and "e" not in token and "E" not in token:
        return None
    try:
        kept = repr(float(token))
    except ValueError:  # not one number (a run inside a string)
        return None
    if kept == token or (kept[-1].isdigit() and Decimal(kept) == Decimal(token)):
        return None
    return kept


def typed_reading(staged: Staged, typed: Typed, *, stored: list[dict[str, str]] | None,
                  overrides: dict[str, tuple[str, str]]) -> Reading:
    """The Reading of JSON/Parquet: typed values, stored as they are where the lake holds them exactly;
    JSON numbers read as their text, so that a DOUBLE is checked for lost digits."""
    columns = []
    known = {c["name"].lower(): c for c in stored} if stored is not None else None
    for name, type_ in typed.columns:
        read = "VARCHAR" if staged.format != "parquet" and type_ == "DOUBLE" else type_
        if known is not None:
            target = known.get(name.lower())
            if target is None:
                raise InvalidInput(f"column {name!r} is not in dataset (columns: {_names(stored)})",
                                   code="schema_mismatch")
            check = "none" if read == target["type"] else ("text" if read == "VARCHAR" else "value")
            columns.append(Column(target["name"], name, read, target["type"], check))
            continue
        stored_type, why = exact_types.storable(name, type_)
        col = Column(name, name, read, stored_type, "text" if read == "VARCHAR" and type_ != "VARCHAR" else (
            "none" if read == stored_type else "value"), sniffed=type_ if why else None, why=why)
        if name.lower() in overrides:
            col.sniffed, col.type, col.why = type_, *overrides[name.lower()]
        columns.append(col)
    if staged.format == "parquet":
        return Reading(staged, [f"read_parquet({_file_list(staged)}, union_by_name=true)"], columns)
    # One call per file, so that record numbers in messages count within each file.
    spec = ", ".join(f"{sql_string(c.source)}: {sql_string(c.read)}" for c in columns)
    calls = [f"read_json({sql_string(str(p))}, {typed.options}, columns={{{spec}}})" for p in staged.paths]
    return Reading(staged, calls, columns, [[c.source for c in columns]] * len(calls))


def _describe(cur: duckdb.DuckDBPyConnection, call: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in cur.execute(f"DESCRIBE SELECT * FROM {call}").fetchall()]


def _check_names(described: list[tuple[str, str]], staged: Staged) -> None:
    if not described:
        raise InvalidInput(f"{staged.description} has no columns", code="empty_file")
    seen: set[str] = set()
    for name, _ in described:
        if name.lower() in seen:
            raise InvalidInput(f"duplicate column name {name!r} in {staged.description}", code="duplicate_column")
        seen.add(name.lower())


def _names(columns: list[dict[str, str]]) -> str:
    return ", ".join(c["name"] for c in columns)


def rejected_lines(cur: duckdb.DuckDBPyConnection, reading: Reading) -> list[int]:
    """Lines skipped by on_ragged='skip_and_report'; InvalidInput if a line was skipped for another reason."""
    rows = cur.execute(f"SELECT line, error_type, csv_line FROM {reading.rejects} ORDER BY line").fetchall()
    if not rows:
        return []
    lines = csv_check.physical_lines(reading.staged.paths[0], reading.dialects[0], reading.staged.compression,
                                     {int(r[0]) for r in rows})
    for line, error_type, text in rows:
        if error_type not in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            raise InvalidInput(f"line {lines[line]} of {reading.staged.names[0]} cannot be read "
                               f"({error_type.lower()}): {json.dumps(text.strip())[:80]}", code="bad_file",
                               line=lines[line])
    return sorted(set(lines.values()))
