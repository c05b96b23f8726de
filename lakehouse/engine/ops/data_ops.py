"""Operations on SQL and datasets: sql.query, dataset.ingest / list / describe / drop / compact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from lakehouse.engine import datasets, ingest, sources_postgres
from lakehouse.engine.ingest import IngestResult
from lakehouse.engine.ops import scope
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.context import remote
from lakehouse.engine.ops.types import CorpusName, DatasetName, NonBlank, Seconds, Source
from lakehouse.engine.safe_sql import QueryResult, run_query
from lakehouse.engine.sources import SourceOptions, resolve_import_path
from lakehouse.errors import InvalidInput, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

def check_sql_size(lake: Lake, sql: str, field: str = "sql") -> None:
    limit = lake.settings.max_sql_chars
    if len(sql) > limit:
        raise InvalidInput(f"{field} is {len(sql):,} characters; the limit is {limit:,} (max_sql_chars)",
                           code="sql_too_long", field=field)


class SqlQuery(Input):
    sql: NonBlank = Field(description="one read-only statement: SELECT, WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE")
    params: list[Any] | dict[str, Any] | None = Field(None, description="values for ? or $name parameters")
    max_rows: int | None = Field(None, ge=0, description="row cap (remote callers: at most the server's max_rows)")
    timeout_s: Seconds | None = Field(None, description="seconds before the query is interrupted")
    at_snapshot: int | None = Field(None, ge=0, description="read the lake as of this DuckLake snapshot (time travel; "
                                    "ids from journal or ducklake_snapshots)")


def _sql_query(lake: Lake, inp: SqlQuery) -> QueryResult:
    s = lake.settings
    check_sql_size(lake, inp.sql)
    max_rows, timeout, max_bytes = inp.max_rows, inp.timeout_s, None
    if remote():  # a remote caller may ask for less than the server's limits, never for more
        max_rows = s.max_rows if max_rows is None else min(max_rows, s.max_rows)
        timeout = s.query_timeout_s if timeout is None else min(timeout, s.query_timeout_s)
        max_bytes = s.max_response_mb * 2**20
    return run_query(lake.ctx, inp.sql, inp.params, max_rows=s.max_rows if max_rows is None else max_rows,
                     timeout_s=s.query_timeout_s if timeout is None else timeout, max_bytes=max_bytes,
                     at_snapshot=inp.at_snapshot)


class DatasetIngest(Input):
    source: Source = Field(description="a file path or glob (remote callers: inside import_dirs), bytes or a file, "
                           "or postgres://user:password@host:port/db (remote callers: in allowed_sources)")
    dataset: DatasetName
    format: Literal["auto", "csv", "tsv", "json", "ndjson", "parquet", "pdf", "xlsx"] = "auto"
    mode: Literal["create", "append", "replace", "delta"] = "create"
    key: NonBlank | None = Field(None, description="the key column (mode delta)")
    filename: str | None = Field(None, description="the uploaded file's name (its format and the messages)")
    header: bool | None = Field(None, description="CSV: line 1 is the header (true), data (false), or sniffed (null)")
    on_ragged: Literal["error", "pad", "skip_and_report"] = Field(
        "error", description="CSV lines with another field count: refuse, pad missing trailing fields, or skip")
    date_format: str | None = Field(None, description="strptime format of day/month dates (else kept as text)")
    timestamp_format: str | None = Field(None, description="strptime format of day/month timestamps")
    widen: bool = Field(False, description="append/delta: widen a column whose type cannot hold the new values")
    table: NonBlank | None = Field(None, description="PostgreSQL: the table (schema.name) to read")
    query: NonBlank | None = Field(None, description="PostgreSQL: a SELECT to read (run read-only, one snapshot)")
    sheet: NonBlank | None = Field(None, description=".xlsx: the sheet to read (default: the first)")
    chunk_chars: int | None = Field(None, ge=100, le=100_000, description="PDF: the longest chunk of text")
    corpus: CorpusName | None = Field(None, description="PDF: also embed the chunks into this corpus")


def _ingest(lake: Lake, inp: DatasetIngest) -> IngestResult:
    source = inp.source
    if sources_postgres.is_postgres(source):
        pg = sources_postgres.parse(source)  # registers the password with the scrubber first
        if remote():  # a remote caller must not make the server connect wherever it likes
            sources_postgres.check_allowed(pg, lake.settings.allowed_sources)
        where = pg.public
    else:
        if isinstance(source, str) and remote():
            source = resolve_import_path(source, lake.settings.import_dirs)
        where = inp.filename or (source if isinstance(source, str) else None)
    options = SourceOptions(table=inp.table, query=inp.query, sheet=inp.sheet, chunk_chars=inp.chunk_chars,
                            corpus=inp.corpus)
    try:
        result = ingest.ingest(lake.ctx, source, inp.dataset, format=inp.format, mode=inp.mode, key=inp.key,
                               filename=inp.filename, header=inp.header, on_ragged=inp.on_ragged,
                               date_format=inp.date_format, timestamp_format=inp.timestamp_format, widen=inp.widen,
                               source_options=options)
    except Exception as exc:
        code, message = getattr(exc, "code", "internal"), getattr(exc, "message", str(exc))
        lake.ctx.journal.record("ingest_failed", inp.dataset, message, code=code, mode=inp.mode, file=where)
        raise
    if not result.skipped:  # the corpora built from the dataset follow it, in the same operation
        result.followers = lake.follower.sync_dataset(inp.dataset)
    if inp.corpus is not None:
        chunks_into_corpus(lake, result, inp.corpus)
    return result


def chunks_into_corpus(lake: Lake, result: IngestResult, corpus: str) -> None:
    """Embed a PDF ingest's chunks into `corpus` (created on first use; a chunk ingested again replaces its row)."""
    documents = (result.source_info or {}).get("documents")
    if result.skipped and lake.vectors.exists(corpus):
        return
    where, params = ("WHERE document IN (SELECT unnest(?))", [documents]) if documents else ("", [])
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        found = cur.execute(f"SELECT document, page, chunk, text FROM lake.main.{result.dataset} {where} "
                            "ORDER BY document, page, chunk", params).fetchall()
    rows = [{"id": f"{d}:{p}:{c}", "text": t, "metadata": {"document": d, "page": p, "dataset": result.dataset}}
            for d, p, c, t in found]
    if lake.vectors.exists(corpus):
        out = lake.vectors.add_to_corpus(corpus, rows)
    else:
        out = lake.vectors.create_corpus(corpus, rows=rows, source={"dataset": result.dataset, "id": "document:page:chunk",
                                                                    "text": ["text"], "metadata": ["document", "page"]},
                                         builder="pdf")
    result.source_info = {**(result.source_info or {}), "corpus": {"name": corpus, "rows": out["rows"]}}


def _compact(lake: Lake, inp: DatasetName_) -> dict[str, Any]:
    out = ingest.compact(lake.ctx, inp.name)
    if out["folded"]:
        out["followers"] = lake.follower.sync_dataset(inp.name)
    return out


class DatasetName_(Input):
    name: DatasetName


class NoInput(Input):
    pass


OPS = [
    Op("sql.query", "Run one read-only SQL statement in the sandbox; rows capped, time-limited.", SqlQuery,
       _sql_query, output=QueryResult, http="POST /sql", cli="lakehouse sql QUERY",
       count=lambda r: r.row_count, summary=lambda r: {"rows": r.row_count, "truncated": r.truncated}),
    Op("dataset.ingest", "Load a CSV/TSV/JSON/NDJSON/Parquet/PDF/.xlsx file or a PostgreSQL table or query into a "
       "dataset, atomically and idempotently.",
       DatasetIngest, _ingest, output=IngestResult, writes=True, http="POST /ingest",
       cli="lakehouse ingest PATH --dataset NAME", count=lambda r: r.rows,
       summary=lambda r: {"dataset": r.dataset, "rows": r.rows, "skipped": r.skipped, "mode": r.mode,
                          "snapshot_id": r.snapshot_id, "warnings": [w["rule"] for w in r.warnings]}),
    Op("dataset.list", "List datasets with their kind, key, row count and ingest count.", NoInput,
       lambda lake, inp: scope.visible(datasets.list_datasets(lake.ctx), "dataset"), output=list[dict[str, Any]],
       http="GET /datasets",
       sql="lakehouse_datasets()", cli="lakehouse datasets", count=len),
    Op("dataset.describe", "A dataset's columns, row count and ingest history (with snapshots).", DatasetName_,
       lambda lake, inp: datasets.describe_dataset(lake.ctx, inp.name), output=dict[str, Any],
       http="GET /datasets/<name>", sql="lakehouse_dataset(name)", cli="lakehouse dataset NAME",
       count=lambda d: d["rows"]),
    Op("dataset.drop", "Drop a dataset and its ingest history.", DatasetName_,
       lambda lake, inp: datasets.drop_dataset(lake.ctx, inp.name) or {"dropped": inp.name}, writes=True,
       http="DELETE /datasets/<name>", cli="lakehouse drop NAME"),
    Op("dataset.compact", "Fold a merge-on-read dataset's deltas into its base.", DatasetName_,
       _compact, output=dict[str, Any], writes=True,
       http="POST /datasets/<name>/compact", cli="lakehouse compact NAME", count=lambda d: d["folded"]),
]
