"""Field types shared by op inputs: names, limits and the few Python-only values (vectors, files).

Limits live here once: every surface gets the same bounds from the same field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

from lakehouse.engine.names import check_name
from lakehouse.errors import InvalidInput

MAX_K = 10_000
MAX_RAG_K = 100
MAX_SQL_CHARS_DEFAULT = 100_000


def _dataset(v: Any) -> str:
    return check_name(v, "dataset")


def _corpus(v: Any) -> str:
    return check_name(v, "corpus")


def _nonblank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty")
    return v


_NAME_SCHEMA = {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$"}
DatasetName = Annotated[str, PlainValidator(_dataset), WithJsonSchema(_NAME_SCHEMA)]
CorpusName = Annotated[str, PlainValidator(_corpus), WithJsonSchema(_NAME_SCHEMA)]
NonBlank = Annotated[str, AfterValidator(_nonblank)]
K = Annotated[int, Field(ge=0, le=MAX_K, description="rows to return")]
PositiveK = Annotated[int, Field(ge=1, le=MAX_K)]
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


def _query(v: Any) -> str | np.ndarray:
    """Text to embed, or a vector: a list of numbers (JSON) or a numpy array (Python)."""
    if isinstance(v, str):
        if not v.strip():
            raise InvalidInput("query must not be empty", code="invalid_query")
        return v
    if isinstance(v, np.ndarray):
        arr = v
    elif isinstance(v, (list, tuple)) and v and all(
            isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for x in v):
        arr = np.asarray(v, dtype=np.float32)
    else:
        raise InvalidInput("query must be text or a non-empty array of numbers", code="invalid_query")
    if arr.ndim != 1 or not len(arr) or arr.dtype.kind not in "iuf":
        raise InvalidInput("query vector must be a flat, non-empty array of numbers", code="invalid_query")
    if not np.isfinite(arr).all():
        raise InvalidInput("query vector holds NaN or infinite values", code="invalid_vector")
    return arr


Query = Annotated[Any, PlainValidator(_query), WithJsonSchema({
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "number"}, "minItems": 1}],
    "description": "text to embed, or the query vector"})]


_PLAIN_IDS = frozenset({int, str})


def _ids(v: Any) -> Any:
    """An id filter: a list of ids (JSON, Python), or what SQL hands over (an int64 array, JSON strings)."""
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        if set(map(type, v)) <= _PLAIN_IDS:  # hot path: a filter's 50K ids are checked per call
            return v
        for i, x in enumerate(v):
            if isinstance(x, (dict, list, tuple, bool)) or (isinstance(x, float) and not math.isfinite(x)):
                raise InvalidInput(f"ids[{i}] must be a string or a number, got {x!r}", code="invalid_ids")
        return v
    if hasattr(v, "__len__") and not isinstance(v, (str, bytes, dict)):  # numpy arrays, Arrow arrays, JsonStrings
        return v
    raise InvalidInput("ids must be a list of ids", code="invalid_ids")


Ids = Annotated[Any, PlainValidator(_ids), WithJsonSchema({
    "type": "array", "items": {"type": ["string", "integer"]}, "description": "only among these ids"})]


def _matrix(v: Any) -> Any:
    """Vectors, one per row: a 2-D numpy array (Python) or rows of numbers (JSON: HTTP, MCP)."""
    if isinstance(v, list) and v and all(isinstance(row, list) for row in v) and len({len(row) for row in v}) == 1 \
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for row in v for x in row):
        v = np.asarray(v, dtype=np.float32)
    if isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "iuf":
        if not np.isfinite(v).all():
            raise InvalidInput("embeddings hold NaN or infinite values", code="invalid_embeddings")
        return v
    raise InvalidInput("embeddings must be a 2-D array (rows x dimensions) of numbers", code="invalid_embeddings")


Matrix = Annotated[Any, PlainValidator(_matrix), WithJsonSchema({
    "type": "array", "items": {"type": "array", "items": {"type": "number"}}})]


def _rows(v: Any) -> Any:
    """Corpus rows: a list of objects {id, text, metadata?} (JSON, Python) or an Arrow table (Python)."""
    if isinstance(v, list) and all(isinstance(r, dict) for r in v):
        return v
    if isinstance(v, pa.Table):
        return v
    raise InvalidInput("rows must be a list of objects {id, text, metadata?}", code="invalid_rows")


Rows = Annotated[Any, PlainValidator(_rows), WithJsonSchema({
    "type": "array", "items": {"type": "object"}, "description": "rows {id, text, metadata?}"})]


def _source(v: Any) -> Any:
    if isinstance(v, str):
        if not v.strip():
            raise InvalidInput("path must not be empty", code="invalid_source")
        return v
    if isinstance(v, (bytes, bytearray, memoryview)) or hasattr(v, "read") or hasattr(v, "__fspath__"):
        return v
    raise InvalidInput(f"source must be a path, bytes or a binary file, got {type(v).__name__}", code="invalid_source")


Source = Annotated[Any, PlainValidator(_source), WithJsonSchema({
    "type": "string", "description": "a server-side path (inside import_dirs for remote callers)"})]
