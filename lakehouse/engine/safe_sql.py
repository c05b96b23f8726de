"""The read-only SQL path: parse-level checks (DuckDB's parser + sqlglot), then a sandboxed run.

Both layers are needed: the sandboxed connection refuses files outside the lake and config
changes, but would still run `COPY ... TO` inside it; the parser check refuses every statement
that is not a query, and every function that reads files, whatever the spelling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from lakehouse.errors import Forbidden, InvalidInput, PayloadTooLarge, QueryTimeout, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

_ALLOWED_TYPES = {"SELECT", "EXPLAIN"}
_ALLOWED_ROOTS = (exp.Query, exp.Describe, exp.Show, exp.Summarize, exp.Values)
# Table functions and scalars that reach files, other databases, secrets or arbitrary SQL.
FORBIDDEN_FUNCS = re.compile(
    r"^(read_\w+|\w+_scan|scan_\w+|glob|sniff_csv|parquet_\w+|query|query_table|getenv|"
    r"duckdb_secrets|which_secret|load_aws_credentials|ducklake_(?!snapshots$|table_info$|"
    r"current_snapshot$|last_committed_snapshot$)\w+|sqlite_\w+|postgres_\w+|mysql_\w+|"
    r"http_\w+|iceberg_\w+|delta_\w+|fts_\w+_(create|drop)\w*)$",
    re.IGNORECASE,
)
_EXPLAIN = re.compile(r"^\s*explain(\s+analyze)?\s+", re.IGNORECASE)


@dataclasses.dataclass
class QueryResult:
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    elapsed_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_read_only(sql: str) -> str:
    """Return the statement if it is one read-only query; raise Forbidden / InvalidInput if not."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput("sql must be a non-empty string", code="invalid_sql")
    return _check(sql)


@functools.lru_cache(maxsize=1024)  # dashboards repeat the same statements; parsing costs ~1 ms
def _check(sql: str) -> str:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        with map_duckdb_errors():
            raise exc
    if len(statements) != 1:
        raise Forbidden(f"exactly one statement is allowed, got {len(statements)}", code="multiple_statements")
    kind = statements[0].type.name
    if kind not in _ALLOWED_TYPES:
        raise Forbidden(f"{kind} statements are not allowed here: read-only queries only "
                        "(SELECT, WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE)", code="statement_not_allowed")
    body = _EXPLAIN.sub("", sql, count=1) if kind == "EXPLAIN" else sql
    try:
        trees = [t for t in sqlglot.parse(body, read="duckdb") if t is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidInput(f"could not verify the query as read-only: {str(exc).splitlines()[0]}",
                           code="sql_unverifiable") from exc
    if len(trees) != 1 or not isinstance(trees[0], _ALLOWED_ROOTS):
        what = type(trees[0]).__name__.upper() if trees else "empty"
        raise Forbidden(f"{what} statements are not allowed here: read-only queries only", code="statement_not_allowed")
    _check_tree(trees[0])
    return sql


def _check_tree(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, (exp.Command, exp.Pragma, exp.Set, exp.Copy, exp.Attach, exp.Detach, exp.Install,
                             exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Use)):
            raise Forbidden(f"{node.key.upper()} is not allowed in a read-only query", code="statement_not_allowed")
        if isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            if FORBIDDEN_FUNCS.match(name or ""):
                raise Forbidden(f"function {name.lower()}() reads files or other databases and is not allowed here",
                                code="function_not_allowed")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            name = node.this.name
            if any(ch in name for ch in "/\\:.") or isinstance(node.this, exp.Literal):
                raise Forbidden(f"reading files by name ({name!r}) is not allowed here", code="function_not_allowed")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Literal):
            raise Forbidden(f"reading files by name ({node.this.name!r}) is not allowed here",
                            code="function_not_allowed")


@contextlib.contextmanager
def time_limit(cur: duckdb.DuckDBPyConnection, timeout_s: float) -> Iterator[None]:
    """Interrupt what `cur` runs after `timeout_s` seconds (QueryTimeout naming the limit)."""
    timer = threading.Timer(timeout_s, cur.interrupt)
    timer.daemon = True
    timer.start()
    try:
        with map_duckdb_errors():
            yield
    except QueryTimeout:
        raise QueryTimeout(f"query interrupted after {timeout_s:g} s (query_timeout_s)", code="timeout") from None
    finally:
        timer.cancel()


def run_query(ctx: EngineContext, sql: str, params: Any = None, *, max_rows: int, timeout_s: float,
              max_bytes: int | None = None) -> QueryResult:
    """`Lake.query`: a checked, sandboxed, row-capped and time-limited read; with `max_bytes`, a result larger than
    that (estimated while it is fetched, a chunk at a time) is refused before it is serialised anywhere."""
    check_read_only(sql)
    cur = ctx.query_cursor()
    t0 = time.perf_counter()
    with time_limit(cur, timeout_s):
        res = cur.execute(sql, params) if params is not None else cur.execute(sql)
        names = [d[0] for d in res.description or []]
        types = [str(t) for t in _types(res)]
        rows: list[Any] = []
        size = 0
        while res.description and len(rows) <= max_rows:
            chunk = res.fetchmany(min(_CHUNK, max_rows + 1 - len(rows)))
            if not chunk:
                break
            rows.extend(chunk)
            if max_bytes is not None:
                size += sum(_size(v) for row in chunk for v in row)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the result is over {max_bytes / 2**20:g} MiB (max_response_mb) after "
                                          f"{len(rows):,} rows; ask for fewer rows (max_rows) or columns",
                                          code="response_too_large")
    truncated = len(rows) > max_rows
    rows = [list(r) for r in rows[:max_rows]]
    return QueryResult([{"name": n, "type": t} for n, t in zip(names, types)], rows, len(rows), truncated,
                       round((time.perf_counter() - t0) * 1000, 3))


_CHUNK = 2048


def _size(value: Any) -> int:
    """A cheap estimate of a value's weight in a response (what JSON will make of it, roughly)."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value) + 2
    if isinstance(value, (list, tuple)):
        return 2 + sum(_size(v) for v in value)
    if isinstance(value, dict):
        return 2 + sum(len(str(k)) + _size(v) for k, v in value.items())
    return 16


def read_arrow(ctx: EngineContext, sql: str, params: Any = None, *, check: bool = True) -> pa.Table:
    """The rows of a read-only query as Arrow, on the sandboxed instance within query_timeout_s (corpus
    definitions, hybrid `where` filters: user SQL is never run on the read-write instance). `check=False`
    only for SQL the engine wrote itself around values it passes as parameters."""
    if check:
        check_read_only(sql)
    cur = ctx.query_cursor()
    with time_limit(cur, ctx.settings.query_timeout_s):
        res = cur.execute(sql, params) if params is not None else cur.execute(sql)
        tbl = res.arrow()
    return tbl if isinstance(tbl, pa.Table) else tbl.read_all()


def _types(res: duckdb.DuckDBPyConnection) -> list[str]:
    return [d[1] for d in res.description or []]
