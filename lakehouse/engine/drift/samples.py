"""The embeddings of a corpus that embedding drift compares, chosen one of three ways:

    {"generation": N}            the rows index generation N indexed: keys <= its max_key in the corpus table
                                 as of the lake snapshot it was built from (DuckLake time travel, exact). Once
                                 that snapshot has been expired (ducklake_expire_snapshots) the exact membership
                                 is gone: the rows alive now with keys <= max_key stand in (rows replaced or
                                 removed since are missing), and `exact` says so.
    {"ids_sql": "SELECT ..."}    the current rows whose id the query's first column returns; the query runs in
                                 the read-only sandbox (safe_sql.read_arrow), like any user SQL.
    {"since": ts, "until": ts}   rows inserted by the commits of [since, until) (`until` default: now), read with
                                 DuckLake's ducklake_table_insertions between the window's first and last
                                 snapshot, so rows replaced or removed since still count: they were added then.

    sample = load_sample(ctx, "workers", Selection(generation=1))
    sample.vectors, sample.describe()        # float32 (rows x dim), {"generation": 1, "rows": ..., "exact": true}
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.engine.safe_sql import read_arrow
from lakehouse.engine.vectors import store
from lakehouse.errors import InvalidInput, NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Exactly one of: a generation, an ids query, or a time window (`since`, optional `until`; naive UTC)."""

    generation: int | None = None
    ids_sql: str | None = None
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        forms = (self.generation is not None, self.ids_sql is not None,
                 self.since is not None or self.until is not None)
        if sum(forms) != 1:
            raise InvalidInput('a selection is {"generation": N}, {"ids_sql": "SELECT id FROM ..."} or '
                               '{"since": time, "until": time}', code="invalid_selection")
        if self.until is not None and self.since is None:
            raise InvalidInput("a time window needs since (until defaults to now)", code="invalid_selection")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInput(f"the window is empty: until {self.until} is not after since {self.since}",
                               code="invalid_selection")

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Sample:
    vectors: np.ndarray
    selection: Selection
    details: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {**self.selection.describe(), "rows": int(self.vectors.shape[0]), **self.details}


def load_sample(ctx: EngineContext, corpus: str, selection: Selection) -> Sample:
    """The corpus's embeddings that `selection` names, in key order (module docstring)."""
    ids = _ids(ctx, selection.ids_sql) if selection.ids_sql is not None else None  # the sandbox first: no cursor held
    with ctx.fresh_cursor() as cur, map_duckdb_errors():
        meta = store.corpus_row(cur, corpus)
        if meta is None:
            raise NotFound(f"no corpus named {corpus!r}", code="corpus_not_found")
        dim = int(meta["dim"])
        if selection.generation is not None:
            vectors, details = _generation(cur, corpus, dim, selection.generation)
        elif ids is not None:
            vectors, details = _by_ids(cur, corpus, dim, ids), {"ids": len(ids)}
        else:
            vectors, details = _window(cur, corpus, dim, selection.since or "", selection.until)
    return Sample(vectors, selection, details)


def _generation(cur: duckdb.DuckDBPyConnection, corpus: str, dim: int, number: int) -> tuple[np.ndarray, dict[str, Any]]:
    gen = next((g for g in store.generations(cur, corpus) if g["generation"] == number), None)
    if gen is None:
        raise NotFound(f"corpus {corpus!r} has no index generation {number}", code="generation_not_found")
    table = store.table(corpus)
    try:
        tbl = store.fetch_table(cur, f"SELECT embedding FROM {table} AT (VERSION => ?) WHERE key <= ? ORDER BY key",
                                [gen["snapshot_id"], gen["max_key"]])
        exact = True
    except duckdb.InvalidInputException as exc:
        if "No snapshot found" not in str(exc):
            raise
        log.info("corpus %s generation %d: snapshot %s expired; using today's rows up to key %d", corpus, number,
                 gen["snapshot_id"], gen["max_key"])
        tbl = store.fetch_table(cur, f"SELECT embedding FROM {table} WHERE key <= ? ORDER BY key", [gen["max_key"]])
        exact = False
    return store.matrix(tbl.column("embedding"), dim), {"snapshot_id": gen["snapshot_id"], "exact": exact}


def _ids(ctx: EngineContext, sql: str) -> pa.Array:
    tbl = read_arrow(ctx, sql)
    if tbl.num_columns == 0:
        raise InvalidInput("ids_sql returned no columns: select the ids as its first column", code="invalid_selection")
    column = tbl.column(0)
    try:
        ids = pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInput(f"ids_sql's first column is {column.type}: select ids (text or integers)",
                           code="invalid_selection") from None
    return pc.unique(pc.drop_null(ids))


def _by_ids(cur: duckdb.DuckDBPyConnection, corpus: str, dim: int, ids: pa.Array) -> np.ndarray:
    cur.register("lh_drift_ids", pa.table({"id": ids}))
    try:
        tbl = store.fetch_table(cur, f"SELECT embedding FROM {store.table(corpus)} "
                                "WHERE id IN (SELECT id FROM lh_drift_ids) ORDER BY key")
    finally:
        cur.unregister("lh_drift_ids")
    return store.matrix(tbl.column("embedding"), dim)


def _window(cur: duckdb.DuckDBPyConnection, corpus: str, dim: int, since: str,
            until: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    first, last = cur.execute(
        "SELECT min(snapshot_id), max(snapshot_id) FROM lake.snapshots() "
        "WHERE snapshot_time >= ?::TIMESTAMP AT TIME ZONE 'UTC' "
        "AND (?::TIMESTAMP IS NULL OR snapshot_time < ?::TIMESTAMP AT TIME ZONE 'UTC')", [since, until, until]).fetchone()
    # the current table's creation: a corpus dropped and built again under its name is a new table
    created = cur.execute("SELECT max(snapshot_id) FROM lake.snapshots() WHERE list_contains(changes['tables_created'], ?)",
                          [f"{store.SCHEMA}.{corpus}"]).fetchone()[0]
    if first is not None and created is not None:
        first = max(first, created)
    if first is None or first > last:
        return np.zeros((0, dim), dtype=np.float32), {"snapshots": None}
    try:
        tbl = store.fetch_table(cur, "SELECT embedding FROM ducklake_table_insertions('lake', ?, ?, ?, ?) ORDER BY key",
                                [store.SCHEMA, corpus, first, last])
    except duckdb.CatalogException:  # the table did not exist yet at the window's end: nothing was added
        return np.zeros((0, dim), dtype=np.float32), {"snapshots": None}
    return store.matrix(tbl.column("embedding"), dim), {"snapshots": [first, last]}
