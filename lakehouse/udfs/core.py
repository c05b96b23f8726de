"""Core functions: `lakehouse_version()`, and the listings behind `lakehouse_datasets()`,
`lakehouse_dataset(name)` and `lakehouse_corpora()` (the dataset.list / dataset.describe / corpus.list
operations).

    SELECT * FROM lakehouse_datasets();
    SELECT lakehouse_dataset('workers') ->> '$.rows';
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.ops import entrance
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

DATASETS_SQL = "STRUCT(name VARCHAR, kind VARCHAR, key VARCHAR, rows BIGINT, ingests BIGINT, updated_at TIMESTAMP)[]"
CORPORA_SQL = ("STRUCT(name VARCHAR, embedder VARCHAR, dim INTEGER, metric VARCHAR, dtype VARCHAR, kind VARCHAR, "
               "builder VARCHAR, rows BIGINT, active_generation INTEGER, created_at TIMESTAMP)[]")
_CORPUS_FIELDS = ("name", "embedder", "dim", "metric", "dtype", "kind", "builder", "rows", "active_generation",
                  "created_at")


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    from lakehouse import __version__

    con.create_function("lakehouse_version", lambda: __version__, [], "VARCHAR", side_effects=False)

    @udf_errors
    def lh_datasets(profile: str | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            return [{k: d[k] for k in ("name", "kind", "key", "rows", "ingests", "updated_at")}
                    for d in lake.ops.call("dataset.list")]

    @udf_errors
    def lh_dataset(profile: str | None, name: str) -> str:
        with entrance("sql", read_only=read_only, profile=profile):
            return json.dumps(lake.ops.call("dataset.describe", name=name), default=str)

    @udf_errors
    def lh_corpora(profile: str | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            return [{k: c[k] for k in _CORPUS_FIELDS} for c in lake.ops.call("corpus.list")]

    con.create_function("lh_datasets", lh_datasets, ["VARCHAR"], DATASETS_SQL, type="native", null_handling="special",
                        side_effects=True)
    con.create_function("lh_dataset", lh_dataset, ["VARCHAR", "VARCHAR"], "JSON", type="native", null_handling="special",
                        side_effects=True)
    con.create_function("lh_corpora", lh_corpora, ["VARCHAR"], CORPORA_SQL, type="native", null_handling="special",
                        side_effects=True)
