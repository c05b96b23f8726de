"""Idempotent, atomic ingest of CSV/TSV/JSON/NDJSON/Parquet into the lake.

Each ingest is one DuckLake transaction: the table write, the ledger row (`lh.ingests`) and the
dataset registry row commit together or not at all. Identical content is recognised by its
SHA-256 and skipped. `mode="delta"` lands rows in `lh_store.<name>__delta`; the dataset is then
a merge-on-read view over `lh_store.<name>__base` + delta, the newest delta row winning per key.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine import catalog
from lakehouse.engine.names import quote_ident, sql_string
from lakehouse.engine.sources import Source, Staged, stage
from lakehouse.errors import Conflict, InvalidInput, NotFound, from_duckdb, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

MODES = ("create", "append", "replace", "delta")
_SEQ = "_lh_seq"
_ROW = "_lh_row"


@dataclasses.dataclass
class IngestResult:
    dataset: str
    rows: int
    snapshot_id: int | None
    skipped: bool
    content_sha256: str
    mode: str = "create"
    format: str = ""
    columns: list[dict[str, str]] = dataclasses.field(default_factory=list)
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def ingest(ctx: EngineContext, source: Source, dataset: str, *, format: str = "auto", mode: str = "create",
           key: str | None = None, filename: str | None = None) -> IngestResult:
    if mode == "delta" and not key:
        raise InvalidInput("mode='delta' needs key= (the column identifying a row)", code="missing_key")
    t0 = time.perf_counter()
    staged = stage(source, ctx.root / "staging", format=format, filename=filename)
    try:
        with ctx.write_lock, ctx.fresh_cursor() as cur:
            result = _ingest_staged(cur, staged, dataset, mode, key)
    finally:
        staged.cleanup()
    result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 3)
    return result


def _ingest_staged(cur: duckdb.DuckDBPyConnection, staged: Staged, dataset: str, mode: str,
                   key: str | None) -> IngestResult:
    with map_duckdb_errors():
        existing = catalog.dataset_row(cur, dataset)
        exists = existing is not None and _dataset_present(cur, dataset, existing["kind"])
        earlier = _earlier_result(cur, dataset, mode, staged.sha256, exists)
    if earlier is not None:
        return earlier
    if mode == "create" and exists:
        raise Conflict(f"dataset {dataset!r} exists; use mode='append', 'replace' or 'delta'",
                       code="dataset_exists")
    if mode == "append" and not exists:
        mode = "create"  # appending to nothing is creating; the ledger says what happened
    reader = _reader_sql(cur, staged)
    columns = _describe(cur, reader, staged)
    if key is not None and key.lower() not in {c["name"].lower() for c in columns}:
        raise InvalidInput(f"key column {key!r} is not in the data (columns: {_names(columns)})",
                           code="missing_key")
    ingest_id = uuid.uuid4().hex

    def write(cur: duckdb.DuckDBPyConnection) -> tuple[int, list[dict[str, str]]]:
        rows, kind, stored_columns = _write(cur, dataset, mode, key, reader, columns, existing if exists else None)
        _record(cur, ingest_id, dataset, mode, key, staged, rows, stored_columns, kind)
        cur.execute("CALL lake.set_commit_message('lakehouse', ?, extra_info => ?)",
                    [f"ingest {mode} {dataset}", commit_info(ingest_id)])
        return rows, stored_columns

    try:
        rows, stored_columns = catalog.in_transaction(cur, write)
    except duckdb.Error as exc:
        raise _explain(exc, staged) from exc
    return IngestResult(dataset, rows, snapshot_for(cur, ingest_id), False, staged.sha256, mode,
                        staged.format, stored_columns)


def _record(cur: duckdb.DuckDBPyConnection, ingest_id: str, dataset: str, mode: str, key: str | None,
            staged: Staged, rows: int, columns: list[dict[str, str]], kind: str) -> None:
    """Ledger row + registry row, inside the ingest's transaction."""
    cur.execute(
        "INSERT INTO lake.lh.ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [ingest_id, dataset, mode, key, staged.format, staged.description, staged.sha256, rows,
         json.dumps(columns)],
    )
    catalog.upsert_dataset(cur, dataset, kind, key if kind == "merge" else None, columns)


def commit_info(ingest_id: str) -> str:
    """The commit's extra_info; the same text DuckDB's json_object() builds, so SQL can join on it."""
    return json.dumps({"ingest_id": ingest_id}, separators=(",", ":"))


def snapshot_for(cur: duckdb.DuckDBPyConnection, ingest_id: str) -> int | None:
    row = cur.execute(
        "SELECT max(snapshot_id) FROM lake.snapshots() WHERE commit_extra_info = ?",
        [commit_info(ingest_id)],
    ).fetchone()
    return None if row is None else row[0]


def _dataset_present(cur: duckdb.DuckDBPyConnection, dataset: str, kind: str) -> bool:
    if kind == "merge":
        return catalog.view_exists(cur, "main", dataset)
    return catalog.table_exists(cur, "main", dataset)


def _earlier_result(cur: duckdb.DuckDBPyConnection, dataset: str, mode: str, sha: str,
                    exists: bool) -> IngestResult | None:
    """The ledger entry this ingest would repeat, if it is still in effect."""
    if not exists:
        return None
    history = cur.execute(
        "SELECT id, mode, content_sha256, rows, format, columns FROM lake.lh.ingests "
        "WHERE dataset = ? ORDER BY ingested_at, id", [dataset],
    ).fetchall()
    last_reset = max((i for i, h in enumerate(history) if h[1] in ("create", "replace")), default=0)
    in_effect = history[last_reset:]
    if mode in ("create", "replace"):
        match = in_effect[-1:] if in_effect and in_effect[-1][1] in ("create", "replace") else []
    else:
        match = [h for h in in_effect if h[1] == mode]
    for h in reversed(match):
        if h[2] == sha:
            return IngestResult(dataset, h[3], snapshot_for(cur, h[0]), True, sha, h[1], h[4], json.loads(h[5]))
    return None


# -- reading --------------------------------------------------------------------------
def _reader_sql(cur: duckdb.DuckDBPyConnection, staged: Staged) -> str:
    files = "[" + ", ".join(sql_string(str(p)) for p in staged.paths) + "]"
    fmt = staged.format
    if fmt == "parquet":
        return f"read_parquet({files})"
    if fmt in ("json", "ndjson"):
        style = "newline_delimited" if fmt == "ndjson" else "auto"
        return f"read_json({files}, format={sql_string(style)}, union_by_name=true)"
    delim = "\t" if fmt == "tsv" else None
    _check_csv_header(cur, staged, delim)
    opts = "auto_detect=true, strict_mode=true, union_by_name=true"
    if delim:
        opts += f", delim={sql_string(delim)}"
    return f"read_csv({files}, {opts})"


def _check_csv_header(cur: duckdb.DuckDBPyConnection, staged: Staged, delim: str | None) -> None:
    """Catch what DuckDB's sniffer hides: duplicate header names (it renames them) and ragged rows
    (it falls back to one column, or fails to sniff)."""
    for path in staged.paths:
        try:
            sniff = cur.execute(
                "SELECT Delimiter, Quote, HasHeader, Columns FROM sniff_csv(?" +
                (f", delim={sql_string(delim)}" if delim else "") + ")", [str(path)],
            ).fetchone()
        except duckdb.Error as exc:
            _find_ragged_line(path, delim or ",")
            raise _explain(exc, staged) from exc
        sep, quote, has_header, cols = sniff
        with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
            first = fh.readline()
        if len(cols) == 1:
            for candidate in (",", "\t", ";", "|"):
                if candidate in first:
                    _find_ragged_line(path, candidate)
        if has_header:
            quotechar = quote if quote and quote != "(empty)" else '"'
            header = next(csv.reader(io.StringIO(first), delimiter=sep, quotechar=quotechar), [])
            seen: dict[str, int] = {}
            for i, name in enumerate(header, 1):
                low = name.strip().lower()
                if low in seen:
                    raise InvalidInput(
                        f"duplicate column name {name.strip()!r} in {path.name} (columns {seen[low]} and {i})",
                        code="duplicate_column")
                seen[low] = i


def _find_ragged_line(path: Any, delim: str) -> None:
    """Raise InvalidInput naming the first line whose field count differs from the header's."""
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim)
        width = None
        for row in reader:
            if not row:
                continue
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise InvalidInput(
                    f"ragged CSV: line {reader.line_num} of {path.name} has {len(row)} fields, expected {width}",
                    code="ragged_rows", line=reader.line_num)


def _describe(cur: duckdb.DuckDBPyConnection, reader: str, staged: Staged) -> list[dict[str, str]]:
    try:
        rows = cur.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise _explain(exc, staged) from exc
    columns = [{"name": r[0], "type": r[1]} for r in rows]
    if not columns:
        raise InvalidInput(f"{staged.description} has no columns", code="empty_file")
    seen: set[str] = set()
    for c in columns:
        if c["name"].lower() in seen:
            raise InvalidInput(f"duplicate column name {c['name']!r}", code="duplicate_column")
        seen.add(c["name"].lower())
    return columns


_LINE = re.compile(r"CSV Error on Line: (\d+)")
_WIDTH = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _explain(exc: duckdb.Error, staged: Staged) -> Exception:
    """A DuckDB read error, retold in terms of the user's file."""
    text = str(exc)
    line = _LINE.search(text)
    where = f" (line {line.group(1)})" if line else ""
    if "Invalid unicode" in text or "not utf-8" in text:
        return InvalidInput(f"{staged.description} is not valid UTF-8{where}", code="bad_encoding")
    width = _WIDTH.search(text)
    if width:
        return InvalidInput(f"ragged CSV: {staged.description}{where} has {width.group(2)} fields, "
                            f"expected {width.group(1)}", code="ragged_rows")
    if "duplicate key" in text:
        key = re.search(r'duplicate key "([^"]+)"', text)
        return InvalidInput(f"duplicate column name {key.group(1) if key else ''!r} in {staged.description}",
                            code="duplicate_column")
    if "Malformed JSON" in text or "No magic bytes" in text or "not a parquet file" in text.lower():
        first = text.splitlines()[0]
        return InvalidInput(f"{staged.description} is not valid {staged.format}: {first}", code="bad_file")
    err = from_duckdb(exc)
    err.message = f"could not read {staged.description} as {staged.format}: {err.message.splitlines()[0]}"
    return err


# -- writing --------------------------------------------------------------------------
def _write(cur: duckdb.DuckDBPyConnection, dataset: str, mode: str, key: str | None, reader: str,
           columns: list[dict[str, str]], existing: dict[str, Any] | None) -> tuple[int, str, list[dict[str, str]]]:
    """The table write of one ingest; returns (rows, dataset kind, stored columns)."""
    target = f"lake.main.{dataset}"
    kind = existing["kind"] if existing else "table"
    if mode in ("create", "replace"):
        if kind == "merge":  # replacing a merge dataset makes it a plain table again
            base, delta = _store_tables(dataset)
            cur.execute(f"DROP VIEW IF EXISTS {target}")
            cur.execute(f"DROP TABLE IF EXISTS {base}")
            cur.execute(f"DROP TABLE IF EXISTS {delta}")
        rows = cur.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {reader}").fetchone()[0]
        return rows, "table", columns
    if existing is None:  # delta into nothing: an empty base of the data's shape
        base, delta = _store_tables(dataset)
        cur.execute(f"CREATE OR REPLACE TABLE {base} AS SELECT * FROM {reader} LIMIT 0")
        cur.execute(f"CREATE OR REPLACE TABLE {delta} AS SELECT *, 0::BIGINT AS {_SEQ}, "
                    f"0::BIGINT AS {_ROW} FROM {reader} LIMIT 0")
        _merge_view(cur, dataset, key, columns)
        existing = {"kind": "merge", "key": key, "columns": columns}
        kind = "merge"
    stored = existing["columns"]
    select = _conforming_select(cur, reader, columns, stored, dataset)
    if mode == "append":
        into = target if kind == "table" else _store_tables(dataset)[0]
        rows = cur.execute(f"INSERT INTO {into} BY NAME {select}").fetchone()[0]
        return rows, kind, stored
    # delta
    if kind == "merge" and existing["key"] != key:
        raise InvalidInput(f"dataset {dataset!r} merges on key {existing['key']!r}, not {key!r}",
                           code="key_mismatch")
    base, delta = _store_tables(dataset)
    if kind == "table":  # first delta: the table becomes the base of a merge-on-read view
        cur.execute(f"CREATE TABLE {base} AS SELECT * FROM {target}")
        cur.execute(f"CREATE TABLE {delta} AS SELECT *, 0::BIGINT AS {_SEQ}, 0::BIGINT AS {_ROW} "
                    f"FROM {target} LIMIT 0")
        cur.execute(f"DROP TABLE {target}")
        _merge_view(cur, dataset, key, stored)
    seq = cur.execute(f"SELECT coalesce(max({_SEQ}), 0) + 1 FROM {delta}").fetchone()[0]
    rows = cur.execute(
        f"INSERT INTO {delta} BY NAME SELECT *, {int(seq)}::BIGINT AS {_SEQ}, "
        f"row_number() OVER () AS {_ROW} FROM ({select})"
    ).fetchone()[0]
    return rows, "merge", stored


def _store_tables(dataset: str) -> tuple[str, str]:
    return f"lake.lh_store.{dataset}__base", f"lake.lh_store.{dataset}__delta"


def _latest_delta(delta: str, cols: str, key: str) -> str:
    """The newest delta row per key: a later ingest wins, and within one ingest the later row."""
    return (f"SELECT {cols} FROM {delta} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {_SEQ} DESC, {_ROW} DESC) = 1")


def _merge_view(cur: duckdb.DuckDBPyConnection, dataset: str, key: str, columns: list[dict[str, str]]) -> None:
    # Base rows whose key has no delta, plus the newest delta per key. An anti-join rather than one
    # window over base + delta: filters on the base push down and nothing sorts the whole base
    # (measured 2x faster on 500K workers, for point lookups and aggregates alike).
    # Schema-qualified but not catalog-qualified, so the view works whatever alias attaches the lake.
    cols = ", ".join(quote_ident(c["name"]) for c in columns)
    k = quote_ident(key)
    delta = f"lh_store.{dataset}__delta"
    cur.execute(
        f"CREATE OR REPLACE VIEW lake.main.{dataset} AS "
        f"SELECT {cols} FROM lh_store.{dataset}__base b WHERE NOT EXISTS "
        f"(SELECT 1 FROM {delta} d WHERE d.{k} = b.{k}) "
        f"UNION ALL {_latest_delta(delta, cols, k)}"
    )


def _conforming_select(cur: duckdb.DuckDBPyConnection, reader: str, columns: list[dict[str, str]],
                       stored: list[dict[str, str]], dataset: str) -> str:
    """SELECT new data in the dataset's column types, or InvalidInput naming the conflict."""
    known = {c["name"].lower(): c for c in stored}
    parts = []
    for c in columns:
        target = known.get(c["name"].lower())
        if target is None:
            raise InvalidInput(f"column {c['name']!r} is not in dataset {dataset!r} (columns: {_names(stored)})",
                               code="schema_mismatch")
        ident = quote_ident(c["name"])
        if c["type"] == target["type"]:
            parts.append(f"{ident} AS {quote_ident(target['name'])}")
            continue
        bad = cur.execute(
            f"SELECT count(*), any_value({ident}::VARCHAR) FROM {reader} "
            f"WHERE {ident} IS NOT NULL AND TRY_CAST({ident} AS {target['type']}) IS NULL"
        ).fetchone()
        if bad[0]:
            raise InvalidInput(
                f"type conflict in column {c['name']!r}: dataset {dataset!r} has {target['type']}, "
                f"the new data has {c['type']} ({bad[0]} values such as {bad[1]!r} do not convert)",
                code="type_conflict")
        parts.append(f"CAST({ident} AS {target['type']}) AS {quote_ident(target['name'])}")
    return f"SELECT {', '.join(parts)} FROM {reader}"


def _names(columns: list[dict[str, str]]) -> str:
    return ", ".join(c["name"] for c in columns)


# -- maintenance ----------------------------------------------------------------------
def compact(ctx: EngineContext, dataset: str) -> dict[str, Any]:
    """Fold a merge dataset's deltas into its base; the query result is the same before and after."""
    with ctx.write_lock, ctx.fresh_cursor() as cur, map_duckdb_errors():
        row = catalog.dataset_row(cur, dataset)
        if row is None:
            raise NotFound(f"no dataset named {dataset!r}", code="dataset_not_found")
        if row["kind"] != "merge":
            return {"dataset": dataset, "folded": 0, "snapshot_id": None}
        base, delta = _store_tables(dataset)
        key = quote_ident(row["key"])
        cols = ", ".join(quote_ident(c["name"]) for c in row["columns"])
        op_id = uuid.uuid4().hex

        def fold(cur: duckdb.DuckDBPyConnection) -> int:
            folded = cur.execute(f"SELECT count(*) FROM {delta}").fetchone()[0]
            if folded:
                cur.execute(f"DELETE FROM {base} WHERE {key} IN (SELECT {key} FROM {delta})")
                cur.execute(f"INSERT INTO {base} {_latest_delta(delta, cols, key)}")
                cur.execute(f"DELETE FROM {delta}")
            cur.execute("CALL lake.set_commit_message('lakehouse', ?, extra_info => ?)",
                        [f"compact {dataset}", commit_info(op_id)])
            return folded

        folded = catalog.in_transaction(cur, fold)
        return {"dataset": dataset, "folded": folded, "snapshot_id": snapshot_for(cur, op_id) if folded else None}
