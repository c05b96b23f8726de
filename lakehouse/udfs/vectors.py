"""Vector functions: `embed(text[, embedder])`, and the UDFs behind the `vector_search` macro.

    SELECT embed('forklift operator');
    SELECT * FROM vector_search('workers', 'forklift operator with OSHA-10', 10,
                                ids := (SELECT list(id) FROM workers WHERE state = 'IL'));
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

HIT = pa.struct([("id", pa.string()), ("score", pa.float32()), ("rank", pa.int64())])
HIT_SQL = "STRUCT(id VARCHAR, score FLOAT, rank BIGINT)[]"


def parse_query(text: str) -> str | np.ndarray:
    """A FLOAT[] reaches the UDF as its VARCHAR form '[0.1, 0.2, ...]' (cheaper than a list parameter)."""
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            values = json.loads(stripped)
        except ValueError:
            return text
        if values and all(isinstance(v, (int, float)) for v in values):
            return np.asarray(values, dtype=np.float32)
    return text


def hits_array(results: list[list[Any]]) -> pa.Array:
    return pa.array([[{"id": h.id, "score": h.score, "rank": h.rank} for h in hits] for hits in results],
                    type=pa.list_(HIT))


def register(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    @udf_errors
    def lh_embed(texts: pa.Array, specs: pa.Array) -> pa.Array:
        out: list[np.ndarray | None] = [None] * len(texts)
        groups: dict[str | None, list[int]] = {}
        for i, spec in enumerate(specs.to_pylist()):
            groups.setdefault(spec, []).append(i)
        values = texts.to_pylist()
        for spec, rows in groups.items():
            todo = [i for i in rows if values[i] is not None]
            if todo:
                vecs = lake.vectors.embed([values[i] for i in todo], spec, cache=False)
                for i, v in zip(todo, vecs):
                    out[i] = v
        return pa.array([None if v is None else v.tolist() for v in out], type=pa.list_(pa.float32()))

    @udf_errors
    def lh_vector_search(corpus: pa.Array, query: pa.Array, k: pa.Array, ids: pa.Array) -> pa.Array:
        results = []
        for i in range(len(corpus)):
            allowed = ids[i].values if ids[i].is_valid else None
            results.append(lake.vectors.search(corpus[i].as_py(), parse_query(query[i].as_py()),
                                               k[i].as_py(), allowed))
        return hits_array(results)

    con.create_function("lh_embed", lh_embed, ["VARCHAR", "VARCHAR"], "FLOAT[]", type="arrow",
                        null_handling="special", side_effects=False)
    con.create_function("lh_vector_search", lh_vector_search, ["VARCHAR", "VARCHAR", "BIGINT", "VARCHAR[]"],
                        HIT_SQL, type="arrow", null_handling="special", side_effects=True)
