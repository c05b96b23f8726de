"""The lake side of corpora: registry rows, corpus tables, index generations, embedding cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

SCHEMA = "lh_corpus"


def table(name: str) -> str:
    return f"lake.{SCHEMA}.{name}"


_CORPUS_COLUMNS = ("name", "embedder", "embedder_id", "dim", "metric", "dtype", "source", "kind", "builder", "params",
                   "created_at", "updated_at")


def corpus_rows(cur: duckdb.DuckDBPyConnection, name: str | None = None) -> list[dict[str, Any]]:
    """Registry rows by name: every corpus, or the one named."""
    where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
    rows = cur.execute(f"SELECT {', '.join(_CORPUS_COLUMNS)} FROM lake.lh.corpora {where} ORDER BY name",
                       params).fetchall()
    out = [dict(zip(_CORPUS_COLUMNS, r)) for r in rows]
    for meta in out:
        meta["source"] = json.loads(meta["source"])
        meta["params"] = json.loads(meta["params"])
    return out


def corpus_row(cur: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    rows = corpus_rows(cur, name)
    return rows[0] if rows else None


def row_counts(cur: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, int]:
    """Rows of each corpus table, in one query (each lake query pays the catalog's cost once)."""
    if not names:
        return {}
    sql = " UNION ALL ".join(f"SELECT {i} AS i, count(*) FROM {table(n)}" for i, n in enumerate(names))
    return {names[i]: n for i, n in cur.execute(sql).fetchall()}


def sidecar_path(root: Path, corpus: str, generation: int) -> Path:
    """This node's sidecar file of an index generation: `<root>/indexes/<corpus>/<generation>.usearch`."""
    return root / "indexes" / corpus / f"{generation}.usearch"


def active_generation(cur: duckdb.DuckDBPyConnection, corpus: str) -> dict[str, Any] | None:
    return active_of(generations(cur, corpus))


def active_of(gens: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The active one of a corpus's generations (the flip keeps exactly one; the newest if ever several)."""
    active = [g for g in gens if g["active"]]
    return active[-1] if active else None


def generations(cur: duckdb.DuckDBPyConnection, corpus: str | None = None) -> list[dict[str, Any]]:
    """A corpus's index generations, oldest first (every corpus's when `corpus` is None)."""
    where, params = ("WHERE corpus = ?", [corpus]) if corpus is not None else ("", [])
    rows = cur.execute(
        "SELECT corpus, generation, snapshot_id, path, params, sha256, built_at, active, max_key, rows "
        f"FROM lake.lh.index_generations {where} ORDER BY corpus, generation", params).fetchall()
    keys = ("corpus", "generation", "snapshot_id", "path", "params", "sha256", "built_at", "active", "max_key", "rows")
    out = [dict(zip(keys, r)) for r in rows]
    for g in out:
        g["params"] = json.loads(g["params"])
    return out


def load_rows(cur: duckdb.DuckDBPyConnection, corpus: str, dim: int,
              min_key: int = -1) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """(keys int64, vectors float32 (n, dim), table of id/text/metadata) of rows with key > min_key."""
    tbl = fetch_table(cur, f"SELECT key, id, text, metadata, embedding FROM {table(corpus)} WHERE key > ? ORDER BY key",
                      [min_key])
    keys = tbl.column("key").to_numpy().astype(np.int64)
    return keys, matrix(tbl.column("embedding"), dim), tbl.select(["id", "text", "metadata"])


def fetch_table(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pa.Table:
    """A query's result as one Arrow table (duckdb returns a RecordBatchReader in some versions)."""
    tbl = cur.execute(sql, params).arrow() if params is not None else cur.execute(sql).arrow()
    return tbl if isinstance(tbl, pa.Table) else tbl.read_all()


def matrix(column: pa.ChunkedArray | pa.Array, dim: int = 0) -> np.ndarray:
    """A list<float> column (embeddings) as a float32 (n, d) matrix, without a Python object per row
    (`dim`: the width of an empty result)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    return arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(arr), -1)


def list_array(vectors: np.ndarray) -> pa.Array:
    """float32 (n, d) -> Arrow list<float> without a Python object per row."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    return fixed.cast(pa.list_(pa.float32()))


def drop(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    """The corpus's table, registry row, generation rows and follow record (inside the caller's transaction)."""
    cur.execute(f"DROP TABLE IF EXISTS {table(name)}")
    cur.execute("DELETE FROM lake.lh.corpora WHERE name = ?", [name])
    cur.execute("DELETE FROM lake.lh.index_generations WHERE corpus = ?", [name])
    cur.execute("DELETE FROM lake.lh.corpus_sync WHERE corpus = ?", [name])  # a new corpus follows anew


def table_ids(cur: duckdb.DuckDBPyConnection, names: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(schema, table) -> DuckLake table id, of the live tables among `names` (an id changes when a table is dropped
    or replaced), from the catalog's metadata, which DuckLake attaches beside the lake whatever the catalog is."""
    rows = cur.execute("SELECT s.schema_name, t.table_name, t.table_id FROM __ducklake_metadata_lake.ducklake_table t "
                       "JOIN __ducklake_metadata_lake.ducklake_schema s ON s.schema_id = t.schema_id "
                       "WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL "
                       "AND list_contains(?, s.schema_name || '.' || t.table_name)",
                       [[f"{schema}.{table}" for schema, table in names]]).fetchall()
    return {(schema, table): int(table_id) for schema, table, table_id in rows}


def table_id(cur: duckdb.DuckDBPyConnection, corpus: str) -> int | None:
    """The DuckLake table id of a corpus's table."""
    return table_ids(cur, [(SCHEMA, corpus)]).get((SCHEMA, corpus))


def changes(cur: duckdb.DuckDBPyConnection, corpus: str, start: int, end: int,
            dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Table]:
    """(deleted keys, inserted keys, their vectors, their id/text/metadata) of the corpus's table in snapshots
    start..end, from DuckLake's change feed; a key inserted and deleted within the range counts as deleted."""
    tbl = fetch_table(cur, "SELECT change_type, key, id, text, metadata, embedding FROM "
                      "ducklake_table_changes('lake', ?, ?, ?, ?) ORDER BY snapshot_id, rowid",
                      [SCHEMA, corpus, start, end])
    kinds = np.asarray(tbl.column("change_type").to_pylist(), dtype=object)
    all_keys = tbl.column("key").to_numpy().astype(np.int64)
    gone = (kinds == "delete") | (kinds == "update_preimage")
    deleted = np.unique(all_keys[gone])
    added = ~gone & ~np.isin(all_keys, deleted)
    inserted = tbl.filter(pa.array(added))
    return (deleted, all_keys[added], matrix(inserted.column("embedding"), dim),
            inserted.select(["id", "text", "metadata"]))
