"""Idempotent, atomic, exact ingest of CSV/TSV/JSON/NDJSON/Parquet into the lake.

Each ingest is one DuckLake transaction: the table write, the ledger row (`lh.ingests`) and the
dataset registry row commit together or not at all. Identical content is recognised by its
SHA-256 and skipped. `mode="delta"` lands rows in `lh_store.<name>__delta`; the dataset is then
a merge-on-read view over `lh_store.<name>__base` + delta, the newest delta row winning per key.

An ingest stores exactly the records the file holds, with the values it holds, or refuses with an
`InvalidInput` naming the file, line and value and changes nothing (README "Ingest rules"):
the file's kind is recognised by content (`ingest_formats`), a CSV's records are counted
independently of DuckDB's parse (`csv_check`), and every conversion from text is guarded
(`exact_types`, `ingest_read`). When a guard fires, a create demotes the column to a type that
holds it exactly (and says so in `type_notes`); an append refuses, or widens with `widen=True`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine import catalog, csv_check, exact_types, ingest_read, journal, validator
from lakehouse.engine.buckets import DIRECT, InBucket, primary_failure
from lakehouse.engine.ingest_read import Failure, Reading
from lakehouse.engine.ingest_write import latest_delta, store_tables, widen_columns, write
from lakehouse.engine.names import quote_ident
from lakehouse.engine.sources import Source, SourceOptions, Staged, stage
from lakehouse.errors import Conflict, InvalidInput, NotFound, StorageError, from_duckdb, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.buckets import Sink
    from lakehouse.engine.connection import Location
    from lakehouse.engine.context import EngineContext

log = logging.getLogger(__name__)

MODES = ("create", "append", "replace", "delta")
# Schemas whose tables DuckLake must not inline into the catalog: inlined nested values (deep
# STRUCT/LIST mixes, JSON lists) fail to read back, and the SQLite catalog cannot hold an inlined
# table of more than 2,000 columns.
_NOT_INLINED = ("main", "lh_store")
# A guard that fired leads to a changed plan (a demoted or widened column) and another attempt.
_ATTEMPTS = 4


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
    header: bool | None = None  # CSV: whether line 1 was read as the header (given, or sniffed)
    skipped_lines: list[int] = dataclasses.field(default_factory=list)  # on_ragged="skip_and_report"
    widened: list[dict[str, str]] = dataclasses.field(default_factory=list)  # widen=True: {column, from, to}
    type_notes: list[dict[str, str]] = dataclasses.field(default_factory=list)  # columns not stored as sniffed
    source_info: dict[str, Any] | None = None  # PDF, .xlsx, PostgreSQL: what was read (pages without text, ...)
    bucket: str | None = None  # the rescue bucket, when the primary could not be written (see buckets)
    followers: dict[str, Any] = dataclasses.field(default_factory=dict)  # corpus -> its sync (vectors/follow.py)
    warnings: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # failed `warn` validation rules

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Options:
    """The ingest options that change how a file is read."""

    header: bool | None = None
    on_ragged: str = "error"
    date_format: str | None = None
    timestamp_format: str | None = None
    widen: bool = False


def ingest(ctx: EngineContext, source: Source, dataset: str, *, format: str = "auto", mode: str = "create",
           key: str | None = None, filename: str | None = None, header: bool | None = None, on_ragged: str = "error",
           date_format: str | None = None, timestamp_format: str | None = None, widen: bool = False,
           source_options: SourceOptions | None = None) -> IngestResult:
    """Load a file, glob, bytes or binary file object into `dataset`, exactly, or refuse.

    header: CSV line 1 is the header (True), data (False) or sniffed (None; one text column is refused).
    on_ragged: CSV lines with a different field count: "error", "pad" (missing trailing fields become
    NULL; too many fields are refused) or "skip_and_report" (stored without them; `skipped_lines`).
    date_format / timestamp_format: strptime formats for day/month dates, otherwise kept as text.
    widen: on append/delta, widen a column whose type cannot hold the new values (`widened`).
    source_options: of a PostgreSQL source (table, query), a workbook (sheet) or a PDF (chunk_chars).
    """
    if mode == "delta" and not key:
        raise InvalidInput("mode='delta' needs key= (the column identifying a row)", code="missing_key")
    options = Options(header, on_ragged, date_format, timestamp_format, widen)
    t0 = time.perf_counter()
    staged = stage(source, ctx.root / "staging", format=format, filename=filename, options=source_options)
    job = None
    try:
        with ctx.write_lock, ctx.fresh_cursor() as cur:
            job = _Job(cur, staged, dataset, mode, key, options, ctx.location, ctx.transaction)
            result = job.run()
    except BaseException:
        if job is not None and isinstance(job.sink, InBucket):
            job.sink.discard()  # files of the rescue attempts that never committed
        raise
    finally:
        staged.cleanup()
    if isinstance(job.sink, InBucket):  # committed to the rescue bucket: say so where storage failures are read
        ctx.journal.record("rescued", dataset, f"the primary bucket could not be written ({job.rescued}); the "
                           f"ingest's {result.rows} rows went to bucket {job.sink.bucket.name!r}: move them back "
                           "with `lakehouse storage drain`", code="primary_unwritable", files=job.sink.files,
                           rescue=job.sink.bucket.name, snapshot_id=result.snapshot_id)
        result.bucket = job.sink.bucket.name
    result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 3)
    return result


class _Job:
    """One ingest: checks outside the transaction, then attempts until the plan holds every value."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, staged: Staged, dataset: str, mode: str, key: str | None,
                 options: Options, location: Location, transaction: Callable[..., Any]) -> None:
        self.cur, self.staged, self.dataset, self.mode, self.key, self.options = cur, staged, dataset, mode, key, options
        self.location, self.transaction = location, transaction
        self.sink: Sink = DIRECT  # the rescue bucket's, once the primary failed
        self.rescued: str | None = None  # why
        self.dialects: list[csv_check.CsvDialect] | None = None
        self.typed: ingest_read.Typed | None = None
        self.counts: concurrent.futures.Future[list[int]] | None = None
        self.numbers: concurrent.futures.Future[None] | None = None  # JSON: numbers DuckDB reads exactly, or raises
        self.overrides: dict[str, tuple[str, str]] = {}  # create: column -> (exact type, why)
        self.widen_to: dict[str, str] = {}               # append: column -> wider type
        self.reading: Reading | None = None
        self.creating = True
        self.inlined: list[str] = []

    def run(self) -> IngestResult:
        # The CSV record count and the JSON number check run on their own thread while DuckDB writes
        # (DuckDB, numpy and file reads release the GIL), so they cost little wall time.
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lh-count") as pool:
            return self._run(pool)

    def _run(self, pool: concurrent.futures.Executor) -> IngestResult:
        cur = self.cur
        with map_duckdb_errors():
            existing, exists = self._existing(cur)
            earlier = _earlier_result(cur, self.dataset, self.mode, self.staged.sha256, exists)
        if earlier is not None:
            return earlier
        if self.mode == "create" and exists:  # before reading the file: the cheap answer first
            raise _exists(self.dataset)
        with map_duckdb_errors():
            self.inlined = _inlined_schemas(cur)
        o = self.options
        try:  # the files are sniffed once, outside the transaction
            if self.staged.format in ("csv", "tsv"):
                self.dialects = ingest_read.read_csv(
                    cur, self.staged, header=o.header, on_ragged=o.on_ragged, date_format=o.date_format,
                    timestamp_format=o.timestamp_format, appending=exists and self.mode in ("append", "delta"))
                self.counts = pool.submit(self._count)
            else:
                self.typed = ingest_read.describe_typed(cur, self.staged, date_format=o.date_format,
                                                        timestamp_format=o.timestamp_format)
                self.numbers = pool.submit(ingest_read.check_json_numbers, self.staged)
        except duckdb.Error as exc:
            raise self._explain(exc) from exc
        for _ in range(_ATTEMPTS):
            try:
                result = self.transaction(cur, self._attempt)
            except duckdb.Error as exc:
                if self._rescue(exc):
                    continue
                if exact_types.guard_tag(str(exc)) is None or self.reading is None:
                    raise self._explain(exc) from exc
                self._after_guard()
                continue
            if not result.skipped:
                result.snapshot_id = snapshot_for(cur, self._ingest_id)
            return result
        raise InvalidInput(f"could not find column types that hold every value of {self.staged.description}",
                           code="type_conflict")

    def _rescue(self, exc: duckdb.Error) -> bool:
        """Whether to attempt again into the rescue bucket: the primary failed, and there is a rescue bucket."""
        rescue = self.location.buckets.rescue
        if rescue is None or self.sink is not DIRECT:
            return False
        self.rescued = primary_failure(exc, self.location.data_path)
        if self.rescued is None:
            return False
        log.warning("ingest %s: the primary bucket cannot be written (%s); writing to rescue bucket %r",
                    self.dataset, self.rescued, rescue.name)
        self.sink = InBucket(rescue)
        return True

    def _existing(self, cur: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any] | None, bool]:
        existing = catalog.dataset_row(cur, self.dataset)
        return existing, existing is not None and _dataset_present(cur, self.dataset, existing["kind"])

    def _attempt(self, cur: duckdb.DuckDBPyConnection) -> IngestResult:
        """The whole ingest inside the transaction. Existence is checked here, not only before: two
        processes creating one dataset both pass the early check, and the loser's retried attempt
        must see the winner's commit and refuse (or skip identical content) instead of replacing it."""
        existing, exists = self._existing(cur)
        earlier = _earlier_result(cur, self.dataset, self.mode, self.staged.sha256, exists)
        if earlier is not None:
            journal.unchanged()
            return earlier
        if self.mode == "create" and exists:
            raise _exists(self.dataset)
        mode = "create" if self.mode == "append" and not exists else self.mode  # the ledger says what happened
        for schema in self.inlined:  # once per lake; inside this transaction, so it costs no commit of its own
            cur.execute(f"CALL lake.set_option('data_inlining_row_limit', 0, schema => '{schema}')")
        self.creating = not exists or mode in ("create", "replace")
        widened = widen_columns(cur, self.dataset, existing, self.widen_to) if self.widen_to and exists else []
        self.reading = self._reading(None if self.creating else existing["columns"])
        if self.key is not None and self.key.lower() not in {c.name.lower() for c in self.reading.columns}:
            raise InvalidInput(f"key column {self.key!r} is not in the data (columns: "
                               f"{', '.join(c.name for c in self.reading.columns)})", code="missing_key")
        self._ingest_id = uuid.uuid4().hex
        removed = cur.execute(f"SELECT count(*) FROM lake.main.{self.dataset}").fetchone()[0] \
            if exists and mode == "replace" else 0
        if isinstance(self.sink, InBucket):
            self.sink.discard()  # an earlier attempt's files, rolled back with it
        rows, kind, columns = write(cur, self.dataset, mode, self.key, self.reading, existing if exists else None,
                                    self.sink)
        skipped = ingest_read.rejected_lines(cur, self.reading) if self.reading.rejects else []
        self._check_count(rows, skipped)
        if self.numbers is not None:
            self.numbers.result()
        warnings = validator.check_ingest(cur, self.dataset)  # a failing `error` rule raises: all of this rolls back
        _record(cur, self._ingest_id, self.dataset, mode, self.key, self.staged, rows, columns, kind)
        journal.note(dataset=self.dataset, rows_added=rows, rows_removed=removed, mode=mode,
                     ingest_id=self._ingest_id, format=self.staged.label,
                     **({"bucket": self.sink.bucket.name} if isinstance(self.sink, InBucket) else {}))
        cur.execute("CALL lake.set_commit_message('lakehouse', ?, extra_info => ?)",
                    [f"ingest {mode} {self.dataset}", commit_info(self._ingest_id)])
        return IngestResult(self.dataset, rows, None, False, self.staged.sha256, mode, self.staged.label, columns,
                            header=self.reading.header, skipped_lines=skipped, widened=widened,
                            type_notes=self.reading.notes(), source_info=self.staged.source_info,
                            warnings=warnings)

    def _reading(self, stored: list[dict[str, str]] | None) -> Reading:
        o = self.options
        if self.dialects is not None:
            return ingest_read.csv_reading(self.staged, self.dialects, stored=stored, on_ragged=o.on_ragged,
                                           date_format=o.date_format, timestamp_format=o.timestamp_format,
                                           header_given=o.header, overrides=self.overrides)
        return ingest_read.typed_reading(self.staged, self.typed, stored=stored, overrides=self.overrides)

    def _after_guard(self) -> None:
        """A guard fired: find every failing column. A create stores such a column as the narrowest type
        holding it exactly; an append refuses, or widens the stored column when asked."""
        with map_duckdb_errors():
            failures = self.reading.diagnose(self.cur, self.key if self.mode == "delta" else None)
        if not failures:
            raise InvalidInput(f"could not read {self.staged.description} exactly", code="type_conflict")
        for f in failures:
            if f.index == len(self.reading.columns):
                raise InvalidInput(
                    f"key column {self.key!r} is empty in {f.count} record(s), the first at {self.reading.where(f)}: "
                    "every delta row needs a key", code="null_key", column=self.key)
        if self.creating:
            for f in failures:
                if f.inferred is None:
                    raise self._conflict(f, None)
                sniffed = f.column.sniffed or f.column.type
                why = f"{f.count} value(s) such as {f.first['v']!r} are not exactly {sniffed}: stored as {f.inferred}"
                log.info("ingest %s: column %r: %s; reading again", self.dataset, f.column.name, why)
                self.overrides[f.column.name.lower()] = (f.inferred, why)
            return
        for f in failures:
            wider = exact_types.widen(f.column.type, f.inferred or f.column.read)
            if not self.options.widen or wider is None or f.column.name.lower() in self.widen_to:
                raise self._conflict(f, wider)
            log.info("ingest %s: widening column %r from %s to %s", self.dataset, f.column.name, f.column.type, wider)
            self.widen_to[f.column.name.lower()] = wider

    def _conflict(self, f: Failure, wider: str | None) -> InvalidInput:
        where, value = self.reading.where(f), f.first["v"]
        if self.creating:  # a typed value the lake's type for it cannot hold (a HUGEINT beyond 38 digits)
            return InvalidInput(f"column {f.column.name!r}: {value!r} at {where} cannot be stored exactly as "
                                f"{f.column.type} ({f.count} value(s) in all)", code="type_conflict",
                                column=f.column.name)
        hint = f"; pass widen=True to widen it to {wider}" if wider and not self.options.widen else ""
        return InvalidInput(
            f"type conflict in column {f.column.name!r}: dataset {self.dataset!r} has {f.column.type}, and "
            f"{value!r} at {where} is not exactly a {f.column.type} ({f.count} value(s) in all){hint}",
            code="type_conflict", column=f.column.name)

    def _count(self) -> list[int]:
        """Each file's data records, counted apart from DuckDB."""
        counts = []
        for path, dialect in zip(self.staged.paths, self.dialects):
            n = csv_check.count_records(path, dialect, self.staged.compression)
            counts.append(n if n is not None else csv_check.count_records_slow(path, dialect, self.staged.compression))
        return counts

    def _check_count(self, rows: int, skipped: list[int]) -> None:
        """A CSV must yield one row per record of the file (less the lines skipped on request)."""
        if self.counts is None:
            return
        counts = self.counts.result()
        stored = rows + len(skipped)
        if stored == sum(counts):
            return
        slow = [csv_check.count_records_slow(p, d, self.staged.compression)
                for p, d in zip(self.staged.paths, self.dialects)]
        if stored == sum(slow):  # the fast count lost its way (a quote inside an unquoted field)
            return
        if self.options.on_ragged == "error":
            for path, name, dialect in zip(self.staged.paths, self.staged.names, self.dialects):
                csv_check.raise_first_ragged(path, name, dialect, self.staged.compression)
        raise InvalidInput(f"could not read every record of {self.staged.description} exactly: DuckDB read {stored} "
                           f"rows, the file holds {sum(slow)} records", code="record_count_mismatch")

    def _explain(self, exc: duckdb.Error) -> Exception:
        return _explain(exc, self.staged, self.dialects)


def _exists(dataset: str) -> Conflict:
    return Conflict(f"dataset {dataset!r} exists; use mode='append', 'replace' or 'delta'", code="dataset_exists")


def _inlined_schemas(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """The user schemas whose tables DuckLake still inlines (the option is persisted in the lake)."""
    off = {r[0] for r in cur.execute(
        "SELECT scope_entry FROM lake.options() WHERE option_name = 'data_inlining_row_limit' "
        "AND scope = 'SCHEMA' AND value = '0'").fetchall()}
    return [s for s in _NOT_INLINED if s not in off]


def _record(cur: duckdb.DuckDBPyConnection, ingest_id: str, dataset: str, mode: str, key: str | None,
            staged: Staged, rows: int, columns: list[dict[str, str]], kind: str) -> None:
    """Ledger row + registry row, inside the ingest's transaction."""
    cur.execute(
        "INSERT INTO lake.lh.ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [ingest_id, dataset, mode, key, staged.label, staged.description, staged.sha256, rows,
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
    """The ledger entry this ingest would repeat, if it is still in effect.

    An append repeats an append of the same content, and also the create (or replace) that started
    the dataset's current contents: appending to a missing dataset is logged as `create`, and the
    same file appended again must not be stored twice."""
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
    elif mode == "append":
        match = [h for h in in_effect if h[1] in ("append", "create", "replace")]
    else:
        match = [h for h in in_effect if h[1] == mode]
    for h in reversed(match):
        if h[2] == sha:
            return IngestResult(dataset, h[3], snapshot_for(cur, h[0]), True, sha, h[1], h[4], json.loads(h[5]))
    return None


_LINE = re.compile(r"CSV Error on Line: (\d+)")
_WIDTH = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_FILE = re.compile(r"^\s*file = (.+)$", re.MULTILINE)
_SUGGESTIONS = re.compile(r"^Possible (?:Solution|fixes)", re.MULTILINE)


def _explain(exc: duckdb.Error, staged: Staged, dialects: list[csv_check.CsvDialect] | None = None) -> Exception:
    """A DuckDB read or commit error, retold in terms of the user's file (its name, its physical line)."""
    text = staged.retell(str(exc))
    file = _FILE.search(text)
    name = file.group(1).strip() if file else staged.names[0] if len(staged.names) == 1 else staged.description
    found = _LINE.search(text)
    line = int(found.group(1)) if found else None
    if line is not None and dialects is not None and name in staged.names:
        i = staged.names.index(name)
        line = csv_check.physical_lines(staged.paths[i], dialects[i], staged.compression, {line})[line]
    where = f" (line {line})" if line else ""
    if "Invalid unicode" in text or "not utf-8" in text:
        return InvalidInput(f"{name} is not valid UTF-8{where}", code="bad_encoding")
    width = _WIDTH.search(text)
    if width:
        at = f"line {line} of {name}" if line else name
        return InvalidInput(f"ragged CSV: {at} has {width.group(2)} fields, expected {width.group(1)}",
                            code="ragged_rows", line=line)
    if "duplicate key" in text:
        key = re.search(r'duplicate key "([^"]+)"', text)
        return InvalidInput(f"duplicate column name {key.group(1) if key else ''!r} in {name}",
                            code="duplicate_column")
    if any(sign in text for sign in ("Malformed JSON", "No magic bytes", "too small to be a Parquet file")) \
            or "not a parquet file" in text.lower():
        first = text.splitlines()[0]
        return InvalidInput(f"{name} is not valid {staged.format}: {first}", code="bad_file")
    if isinstance(exc, duckdb.TransactionException) and "conflict" not in text.lower():
        # A commit DuckLake refused for another reason than a concurrent writer (which is retried).
        cause = text.strip().splitlines()[-1]
        return StorageError(f"could not commit the ingest of {staged.description}: {cause[-300:]}",
                            code="commit_failed")
    if "null_padding in conjunction with quoted new lines" in text:
        # its serial reader would pad, but also swallow an unterminated quote and the rest of the file with it
        return InvalidInput(f"on_ragged='pad' cannot read {name}: a quoted field holds a line break{where}; "
                            "use on_ragged='error' or 'skip_and_report'", code="ragged_rows", line=line)
    if found is not None:  # DuckDB's CSV reader refused the content (some of these errors are its base class)
        return InvalidInput(f"could not read {name} as {staged.format}{where}: {_csv_reason(text)}", code="bad_file",
                            line=line)
    err = from_duckdb(exc)
    if isinstance(exc, duckdb.InvalidInputException) and err.code == "invalid_input":
        err.code = "bad_file"  # DuckDB could not make sense of the file's content
    err.message = f"could not read {staged.description} as {staged.format}: {staged.retell(err.message).splitlines()[0]}"
    return err


def _csv_reason(text: str) -> str:
    """Why DuckDB's CSV reader refused a line: the last line of its message before the suggestions and the
    reader's options (the lines between may quote the offending line, which can be megabytes)."""
    body = _SUGGESTIONS.split(_FILE.split(text, maxsplit=1)[0], maxsplit=1)[0]
    lines = [s.strip() for s in body.splitlines()[1:] if s.strip()]
    return lines[-1][:300] if lines else "the line breaks the CSV format"


# -- maintenance ----------------------------------------------------------------------
def compact(ctx: EngineContext, dataset: str) -> dict[str, Any]:
    """Fold a merge dataset's deltas into its base; the query result is the same before and after."""
    with ctx.write_lock, ctx.fresh_cursor() as cur, map_duckdb_errors():
        row = catalog.dataset_row(cur, dataset)
        if row is None:
            raise NotFound(f"no dataset named {dataset!r}", code="dataset_not_found")
        if row["kind"] != "merge":
            return {"dataset": dataset, "folded": 0, "snapshot_id": None}
        base, delta = store_tables(dataset)
        key = quote_ident(row["key"])
        cols = ", ".join(quote_ident(c["name"]) for c in row["columns"])
        op_id = uuid.uuid4().hex

        def fold(cur: duckdb.DuckDBPyConnection) -> int:
            folded = cur.execute(f"SELECT count(*) FROM {delta}").fetchone()[0]
            if folded:
                cur.execute(f"DELETE FROM {base} WHERE {key} IN (SELECT {key} FROM {delta})")
                cur.execute(f"INSERT INTO {base} {latest_delta(delta, cols, key)}")
                cur.execute(f"DELETE FROM {delta}")
            journal.note(dataset=dataset, folded=folded)  # the dataset's rows are the same before and after
            cur.execute("CALL lake.set_commit_message('lakehouse', ?, extra_info => ?)",
                        [f"compact {dataset}", commit_info(op_id)])
            return folded

        folded = ctx.transaction(cur, fold)
        return {"dataset": dataset, "folded": folded, "snapshot_id": snapshot_for(cur, op_id) if folded else None}
