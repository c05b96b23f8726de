"""Metadata filters: `{"state": "IL"}`, `{"state": ["IL", "WI"], "active": true}`.

Equality per key (a list means any of its values), AND across keys; a row missing a key never
matches; values match by JSON identity, so `true` matches only `true`, not `1` or `"true"`.
Applied as a pre-filter (allowed keys per corpus), so aggressive filters still return k rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.vectors.corpus import CorpusState


def parse_filter(value: Any) -> dict[str, list[str]] | None:
    """None, a dict, or JSON text -> {field: [canonical JSON of accepted values]}."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInput(f"metadata_filter is not valid JSON: {exc}", code="invalid_metadata_filter") from exc
    if not isinstance(value, Mapping):
        raise InvalidInput("metadata_filter must be a JSON object of field -> value or list of values",
                           code="invalid_metadata_filter")
    out: dict[str, list[str]] = {}
    for key, wanted in value.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values:
            raise InvalidInput(f"metadata_filter[{key!r}] is an empty list", code="invalid_metadata_filter")
        out[str(key)] = [canonical(v) for v in values]
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def allowed_keys(state: CorpusState, flt: dict[str, list[str]]) -> np.ndarray:
    """Live keys of `state` whose metadata matches every key of the filter."""
    index = state.metadata_index()
    result: np.ndarray | None = None
    for key, values in flt.items():
        per_key = index.get(key, {})
        hits = [per_key[v] for v in values if v in per_key]
        keys = np.unique(np.concatenate(hits)) if hits else np.zeros(0, dtype=np.int64)
        result = keys if result is None else np.intersect1d(result, keys, assume_unique=True)
        if len(result) == 0:
            break
    out = result if result is not None else np.flatnonzero(state.live)
    return out[state.live[out]] if len(out) else out


def matches(metadata: Mapping[str, Any], flt: dict[str, list[str]] | None) -> bool:
    """Whether one row's metadata passes the filter (the same rule as `allowed_keys`)."""
    return flt is None or all(k in metadata and canonical(metadata[k]) in vals for k, vals in flt.items())
