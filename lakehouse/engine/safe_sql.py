"""The read-only SQL path: every caller's SQL is checked against the allow list, then run on the sandbox.

Two walls, each enough for what it covers:
1. the sandboxed instance (connection.sandbox): the lake attached READ_ONLY, no file outside the lake's
   data and the observer's folders, a locked configuration, DuckLake's metadata catalog under a random
   name; a write, a setting or a file elsewhere fails inside DuckDB whatever the SQL;
2. the allow list (sql_policy), checked on DuckDB's own parse of the statement: one read-only
   statement whose every function, table function and relation, in any position, is allowed. What
   runs is the statement object of that parse (sql_tree.executable), never a second reading of the text.
   This wall alone keeps `COPY ... TO` and `EXPORT` from writing inside the data folder, which DuckDB's
   sandbox allows, and DuckDB's file functions from the catalog file (see sql_policy).

Errors from the sandbox lose the suggestions that would name what the caller may not read, and the
lake's folders (`<lake>`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from lakehouse.engine import sql_policy, sql_scope, sql_tree
from lakehouse.engine.names import sql_string
from lakehouse.errors import InvalidInput, LakehouseError, PayloadTooLarge, QueryTimeout, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext


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
    """Return the statement if it is one read-only query on the allow list; raise Forbidden / InvalidInput if not."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput("sql must be a non-empty string", code="invalid_sql")
    _check(sql)
    return sql


@functools.lru_cache(maxsize=1024)  # dashboards repeat the same statements; parsing costs ~1 ms
def _check(sql: str) -> bool:
    """Whether DuckDB will run `sql` as more than one statement (a PIVOT without IN lists)."""
    return sql_policy.check_query(sql).dynamic_pivot


@contextlib.contextmanager
def sandbox_errors(ctx: EngineContext) -> Iterator[None]:
    """DuckDB's errors as Lakehouse ones, without hidden names or the lake's folders (module docstring)."""
    try:
        with map_duckdb_errors():
            yield
    except LakehouseError as exc:
        message = sql_policy.clean_message(exc.message)
        for folder in sorted({str(ctx.root), ctx.location.data_path.rstrip("/")}, key=len, reverse=True):
            message = message.replace(folder, "<lake>")
        exc.message = message
        exc.args = (message,)
        raise


@contextlib.contextmanager
def time_limit(ctx: EngineContext, cur: duckdb.DuckDBPyConnection, timeout_s: float) -> Iterator[None]:
    """Interrupt what `cur` runs after `timeout_s` seconds (QueryTimeout naming the limit)."""
    timer = threading.Timer(timeout_s, cur.interrupt)
    timer.daemon = True
    timer.start()
    try:
        with sandbox_errors(ctx):
            yield
    except QueryTimeout:
        raise QueryTimeout(f"query interrupted after {timeout_s:g} s (query_timeout_s)", code="timeout") from None
    finally:
        timer.cancel()


def run_query(ctx: EngineContext, sql: str, params: Any = None, *, max_rows: int, timeout_s: float,
              max_bytes: int | None = None, at_snapshot: int | None = None) -> QueryResult:
    """`Lake.query`: a checked, sandboxed, row-capped and time-limited read; with `max_bytes`, a result larger than
    that (estimated while it is fetched, a chunk at a time) is refused before it is serialised anywhere; with
    `at_snapshot`, of the lake as of that DuckLake snapshot (time_travel.py)."""
    check_read_only(sql)
    t0 = time.perf_counter()
    with _reader(ctx, at_snapshot) as cur:
        scoped(ctx, cur, sql, at_snapshot)
        try:
            with time_limit(ctx, cur, timeout_s):
                res = _execute(cur, sql, params)
                names = [d[0] for d in res.description or []]
                types = [str(d[1]) for d in res.description or []]
                rows = _fetch(res, max_rows, max_bytes)
        finally:
            if _check(sql):
                _drop_pivot_types(cur)
    truncated = len(rows) > max_rows
    rows = [list(r) for r in rows[:max_rows]]
    return QueryResult([{"name": n, "type": t} for n, t in zip(names, types)], rows, len(rows), truncated,
                       round((time.perf_counter() - t0) * 1000, 3))


@contextlib.contextmanager
def _reader(ctx: EngineContext, at_snapshot: int | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The sandboxed cursor that reads the latest snapshot, or one pinned to `at_snapshot`."""
    if at_snapshot is None:
        with _latest(ctx) as cur:
            yield cur
        return
    with sandbox_errors(ctx), ctx.db.snapshot_cursor(at_snapshot) as cur:
        yield cur


_CHUNK = 2048


def _fetch(res: duckdb.DuckDBPyConnection, max_rows: int, max_bytes: int | None) -> list[Any]:
    """Up to max_rows + 1 rows (the extra one says "truncated"), a chunk at a time so that a result over
    `max_bytes` is refused before it is all in memory."""
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
    return rows


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
    with _latest(ctx) as cur:
        scoped(ctx, cur, sql if check else None)
        try:
            with time_limit(ctx, cur, ctx.settings.query_timeout_s):
                tbl = _execute(cur, sql, params).arrow()
                tbl = tbl if isinstance(tbl, pa.Table) else tbl.read_all()  # before the cursor runs anything else
        finally:
            if check and _check(sql):
                _drop_pivot_types(cur)
    return tbl


@contextlib.contextmanager
def _latest(ctx: EngineContext) -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's query cursor; inside an engine SQL function (origin "sql") a cursor of its own, since the
    query that called the function may be running on this thread's cursor, and DuckDB would wait on itself."""
    from lakehouse.engine.ops.context import current  # the ops package imports this module: not at import time

    if current().origin != "sql":
        yield ctx.query_cursor()
        return
    with ctx.db.nested_cursor() as cur:
        yield cur


# The profile bound to each cursor's `lh_profile` variable (None: none), so that the SET runs only when it changes.
# Weak: a cursor that is closed and dropped (a snapshot's, a nested read's) takes its entry with it.
_BOUND: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, str | None] = weakref.WeakKeyDictionary()


def scoped(ctx: EngineContext, cur: duckdb.DuckDBPyConnection, sql: str | None, at_snapshot: int | None = None) -> None:
    """Hold `sql` to the caller's profile (sql_scope), and hand the profile to the engine's functions it calls
    through the cursor's `lh_profile` variable. `sql` None: the engine's own SQL, not checked. `at_snapshot`:
    `cur` reads that snapshot, whose views are what the check must read through."""
    from lakehouse.engine.ops.context import current  # the ops package imports this module: not at import time

    profile = current().scope
    name = _BOUND.get(cur)
    if profile is not None:
        if sql is not None:
            with sandbox_errors(ctx):
                names = ctx.db.lake_names.at(cur, ctx.clock.latest()) if at_snapshot is None \
                    else ctx.db.snapshots.lake_names(at_snapshot).at(cur, at_snapshot)
                sql_scope.check(names, sql, profile)
        if name != profile.name:
            cur.execute(f"SET VARIABLE {sql_scope.VARIABLE} = {sql_string(profile.name)}")
            _BOUND[cur] = profile.name
    elif name is not None:
        cur.execute(f"RESET VARIABLE {sql_scope.VARIABLE}")
        _BOUND[cur] = None


def _execute(cur: duckdb.DuckDBPyConnection, sql: str, params: Any) -> duckdb.DuckDBPyConnection:
    """Run the statement objects DuckDB made of `sql` (sql_tree.executable), the caller's parameters on the last."""
    found = sql_tree.executable(sql)
    for statement in found[:-1]:
        cur.execute(statement)
    return cur.execute(found[-1], params) if params is not None else cur.execute(found[-1])


def _drop_pivot_types(cur: duckdb.DuckDBPyConnection) -> None:
    """DuckDB leaves the ENUM type of each PIVOT without IN lists in the cursor's temp catalog: drop them,
    or a long-lived cursor keeps one per such query."""
    try:
        kinds = cur.execute("SELECT type_name FROM duckdb_types() WHERE database_name = 'temp' "
                            "AND type_name LIKE '\\_\\_pivot\\_enum\\_%' ESCAPE '\\'").fetchall()
        for (name,) in kinds:
            cur.execute(f'DROP TYPE IF EXISTS temp.main."{name}"')
    except duckdb.Error:  # the query's own error is the one to report
        pass
