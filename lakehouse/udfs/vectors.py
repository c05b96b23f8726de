"""Vector functions: `embed(text[, embedder])`, and the UDFs behind the `vector_search` macro.

    SELECT embed('forklift operator');
    SELECT * FROM vector_search('workers', 'forklift operator with OSHA-10', 10,
                                ids := (SELECT list(id) FROM workers WHERE state = 'IL'));
    SELECT * FROM text_search('workers', 'forklift OSHA-10', 10);
    SELECT * FROM hybrid_search('workers', 'forklift operator with OSHA-10', 10, fusion := 'rrf');
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from lakehouse.engine.ops import entrance
from lakehouse.engine.vectors.id_lists import JsonStrings, parse_int_list, parse_json_strings
from lakehouse.errors import InvalidInput
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake
    from lakehouse.engine.vectors.hits import Hit

HIT_SQL = "STRUCT(id VARCHAR, score FLOAT, rank BIGINT)[]"


def parse_query(text: str) -> str | np.ndarray:
    """A FLOAT[] reaches the UDF as its VARCHAR form '[0.1, 0.2, ...]' (cheaper than a list parameter).

    orjson parses 384 floats in ~20 us, the json module in ~190 us: this is on every SQL vector query.
    From Python, handing the vector over as this text (`orjson.dumps(vec)`) skips DuckDB's conversion of a
    list parameter (~0.5 ms of a ~2 ms query).
    """
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            values = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return text
        try:  # numpy checks the element types in C: a Python loop over 384 values cost ~75 us
            arr = np.asarray(values)
        except (ValueError, TypeError):  # ragged nesting
            return text
        if arr.ndim == 1 and len(arr) and arr.dtype.kind in "iuf":
            return arr.astype(np.float32)
    return text


def parse_ids(text: str | None) -> np.ndarray | JsonStrings | list[Any] | None:
    """The `ids` filter arrives as the JSON text of the list (`to_json(ids)` in the macros): DuckDB writes
    50K ids as JSON in ~1 ms, where a VARCHAR[] argument becomes 50K Python objects one by one. numba reads
    lists of integers (an int64 array) and of plain strings (byte ranges: `JsonStrings`) without making those
    objects; anything else goes through orjson."""
    if text is None:
        return None
    ints = parse_int_list(text)
    if ints is not None:
        return ints
    strings = parse_json_strings(text)
    if strings is not None:
        return strings
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        values = None
    nested = ("[" in text[1:] or "{" in text) and isinstance(values, list) and any(
        isinstance(v, (list, dict)) for v in values)  # the scan only when the text hints at it
    if not isinstance(values, list) or nested:
        raise InvalidInput(f"ids must be a flat list of ids, got {text[:60]!r}", code="invalid_ids")
    return values


Row = tuple[str, float, int]


def _rows(hits: list[Hit]) -> list[Row]:
    """Hits as the struct rows the macros unnest: tuples convert ~0.1 ms faster per query than dicts."""
    return [(h.id, h.score, h.rank) for h in hits]


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    call = lake.ops.call

    @udf_errors
    def lh_embed(profiles: pa.Array, texts: pa.Array, specs: pa.Array) -> pa.Array:
        out: list[np.ndarray | None] = [None] * len(texts)
        groups: dict[tuple[str | None, str | None], list[int]] = {}
        for i, key in enumerate(zip(profiles.to_pylist(), specs.to_pylist(), strict=True)):
            groups.setdefault(key, []).append(i)
        values = texts.to_pylist()
        for (profile, spec), rows in groups.items():
            todo = [i for i in rows if values[i] is not None]
            if todo:
                with entrance("sql", read_only=read_only, profile=profile):
                    vecs = call("embed", texts=[values[i] for i in todo], embedder=spec)["embeddings"]
                for i, v in zip(todo, vecs):
                    out[i] = v
        return pa.array([None if v is None else v.tolist() for v in out], type=pa.list_(pa.float32()))

    @udf_errors
    def lh_vector_search(profile: str | None, corpus: str, query: str, k: int, ids: str | None) -> list[Row]:
        # native, not arrow: one call per query, and DuckDB's arrow round trip costs ~3 ms of the ~1 ms search
        with entrance("sql", read_only=read_only, profile=profile):
            return _rows(call("vectors.search", corpus=corpus, query=parse_query(query), k=k, ids=parse_ids(ids)))

    @udf_errors
    def lh_text_search(profile: str | None, corpus: str, query: str, k: int, ids: str | None) -> list[Row]:
        with entrance("sql", read_only=read_only, profile=profile):
            return _rows(call("text.search", corpus=corpus, query=query, k=k, ids=parse_ids(ids)))

    @udf_errors
    def lh_hybrid_search(profile: str | None, corpus: str, query: str, k: int, ids: str | None, fusion: str | None) -> list[Row]:
        with entrance("sql", read_only=read_only, profile=profile):
            return _rows(call("hybrid.search", corpus=corpus, query=query, k=k, ids=parse_ids(ids),
                              fusion=fusion or "rrf"))

    search_args = ["VARCHAR", "VARCHAR", "BIGINT", "VARCHAR"]
    con.create_function("lh_vector_search", lh_vector_search, ["VARCHAR", *search_args], HIT_SQL, type="native",
                        null_handling="special", side_effects=True)
    con.create_function("lh_text_search", lh_text_search, ["VARCHAR", *search_args], HIT_SQL, type="native",
                        null_handling="special", side_effects=True)
    con.create_function("lh_hybrid_search", lh_hybrid_search, ["VARCHAR", *search_args, "VARCHAR"], HIT_SQL, type="native",
                        null_handling="special", side_effects=True)
    con.create_function("lh_embed", lh_embed, ["VARCHAR", "VARCHAR", "VARCHAR"], "FLOAT[]", type="arrow",
                        null_handling="special", side_effects=False)
