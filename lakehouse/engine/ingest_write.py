"""The table writes of an ingest, inside its transaction: create/replace, append, merge-on-read delta,
and widening a column on request.

A `merge` dataset is a view over `lh_store.<name>__base` plus the newest row per key of
`lh_store.<name>__delta`; a plain dataset is the table `main.<name>`.
"""

from __future__ import annotations

from typing import Any

import duckdb

from lakehouse.engine.buckets import DIRECT, Sink
from lakehouse.engine.ingest_read import Reading
from lakehouse.engine.names import quote_ident
from lakehouse.errors import InvalidInput

SEQ = "_lh_seq"
ROW = "_lh_row"


def write(cur: duckdb.DuckDBPyConnection, dataset: str, mode: str, key: str | None, reading: Reading,
          existing: dict[str, Any] | None, sink: Sink = DIRECT) -> tuple[int, str, list[dict[str, str]]]:
    """The table write of one ingest; returns (rows, dataset kind, stored columns). `sink`: where rows are
    written (DuckLake's own files in the primary, or the rescue bucket: see `buckets`)."""
    target = f"lake.main.{dataset}"
    kind = existing["kind"] if existing else "table"
    columns = [{"name": c.name, "type": c.type} for c in reading.columns]
    if mode in ("create", "replace"):
        if kind == "merge":  # replacing a merge dataset makes it a plain table again
            base, delta = store_tables(dataset)
            cur.execute(f"DROP VIEW IF EXISTS {target}")
            cur.execute(f"DROP TABLE IF EXISTS {base}")
            cur.execute(f"DROP TABLE IF EXISTS {delta}")
        # CREATE without OR REPLACE for a new dataset: a concurrent creator makes this fail, not overwrite.
        return sink.create_as(cur, target, reading.select(), replace=mode == "replace"), "table", columns
    if existing is None:  # delta into nothing: an empty base of the data's shape
        base, delta = store_tables(dataset)
        sink.create_empty(cur, base, reading.select())
        sink.create_empty(cur, delta, f"SELECT *, 0::BIGINT AS {SEQ}, 0::BIGINT AS {ROW} FROM ({reading.select()})")
        merge_view(cur, dataset, key, columns)
        existing = {"kind": "merge", "key": key, "columns": columns}
        kind = "merge"
    stored = existing["columns"]
    if mode == "append":
        into = target if kind == "table" else store_tables(dataset)[0]
        return sink.insert(cur, into, reading.select()), kind, stored
    if kind == "merge" and existing["key"] != key:
        raise InvalidInput(f"dataset {dataset!r} merges on key {existing['key']!r}, not {key!r}",
                           code="key_mismatch")
    base, delta = store_tables(dataset)
    if kind == "table":  # first delta: the table becomes the base of a merge-on-read view
        sink.create_as(cur, base, f"SELECT * FROM {target}")
        sink.create_empty(cur, delta, f"SELECT *, 0::BIGINT AS {SEQ}, 0::BIGINT AS {ROW} FROM {target}")
        cur.execute(f"DROP TABLE {target}")
        merge_view(cur, dataset, key, stored)
    seq = cur.execute(f"SELECT coalesce(max({SEQ}), 0) + 1 FROM {delta}").fetchone()[0]
    rows = sink.insert(cur, delta, f"SELECT *, {int(seq)}::BIGINT AS {SEQ}, row_number() OVER () AS {ROW} "
                                   f"FROM ({reading.select(key)})")
    return rows, "merge", stored


def widen_columns(cur: duckdb.DuckDBPyConnection, dataset: str, existing: dict[str, Any],
                  wanted: dict[str, str]) -> list[dict[str, str]]:
    """Give the stored columns in `wanted` (lower-case name -> type) their wider type, rewriting the
    stored table(s). A type that would change a stored value (a BIGINT above 2^53 as DOUBLE) falls back
    to VARCHAR. Returns what was widened; updates `existing["columns"]`."""
    tables = list(store_tables(dataset)) if existing["kind"] == "merge" else [f"lake.main.{dataset}"]
    widened, replace = [], []
    for col in existing["columns"]:
        to = wanted.get(col["name"].lower())
        if to is None or to == col["type"]:
            continue
        ident = quote_ident(col["name"])
        changed = sum(cur.execute(
            f"SELECT count(*) FROM {t} WHERE {ident} IS NOT NULL AND "
            f"TRY_CAST(TRY_CAST({ident} AS {to}) AS {col['type']}) IS DISTINCT FROM {ident}").fetchone()[0]
            for t in tables)
        if changed:
            to = "VARCHAR"
        widened.append({"column": col["name"], "from": col["type"], "to": to})
        replace.append(f"CAST({ident} AS {to}) AS {ident}")
        col["type"] = to
    if replace:
        for table in tables:
            cur.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * REPLACE ({', '.join(replace)}) FROM {table}")
        if existing["kind"] == "merge":
            merge_view(cur, dataset, existing["key"], existing["columns"])
    return widened


def store_tables(dataset: str) -> tuple[str, str]:
    return f"lake.lh_store.{dataset}__base", f"lake.lh_store.{dataset}__delta"


def latest_delta(delta: str, cols: str, key: str) -> str:
    """The newest delta row per key: a later ingest wins, and within one ingest the later row."""
    return (f"SELECT {cols} FROM {delta} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {SEQ} DESC, {ROW} DESC) = 1")


def merge_view(cur: duckdb.DuckDBPyConnection, dataset: str, key: str, columns: list[dict[str, str]]) -> None:
    # Schema-qualified but not catalog-qualified, so the view works whatever alias attaches the lake.
    cur.execute(f"CREATE OR REPLACE VIEW lake.main.{dataset} AS "
                + merge_select(f"lh_store.{dataset}__base", f"lh_store.{dataset}__delta", key, columns))


def merge_select(base: str, delta: str, key: str, columns: list[dict[str, str]]) -> str:
    """The rows of a merge dataset: base rows whose key has no delta, plus the newest delta per key (the lake's
    view, and the read path's mirror of it over Parquet files). An anti-join rather than one window over base +
    delta: filters on the base push down and nothing sorts the whole base (measured 2x faster on 500K workers,
    for point lookups and aggregates alike)."""
    cols = ", ".join(quote_ident(c["name"]) for c in columns)
    k = quote_ident(key)
    return (f"SELECT {cols} FROM {base} b WHERE NOT EXISTS (SELECT 1 FROM {delta} d WHERE d.{k} = b.{k}) "
            f"UNION ALL {latest_delta(delta, cols, k)}")
