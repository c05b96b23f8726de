"""One corpus in memory: its active HNSW generation, key maps, vectors, and the search strategies.

Keys are the usearch labels: int64, assigned in insertion order and never reused. The lake table
is the truth; the in-memory state follows it (rows replaced or removed stay in an index
generation until the next rebuild, masked by `live`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from usearch.index import Index

from lakehouse.engine.vectors import hnsw
from lakehouse.engine.vectors.id_lists import JsonStrings
from lakehouse.engine.vectors.int_ids import IntIds
from lakehouse.engine.vectors.kernels import exact_top_k
from lakehouse.engine.vectors.metadata import canonical

# At or below this share of the corpus, exact search over the allowed rows beats filtered HNSW. Measured on
# 100K x 384 (i8 graph, 2 cores), exact vs graph: 7 %: 1.7 vs 2.6 ms; 10 %: 2.4 vs 1.5 ms; 20 %: 4.5 vs 0.8 ms.
EXACT_FRACTION = 0.08
EXACT_MIN_ROWS = 4096
# A filtered graph search asks for OVERSAMPLE x the candidates the filter's share should let through. Same data,
# 2.0 vs 1.5: 12 %: 1.8 vs 1.0 ms; 50 %: 0.80 vs 0.76 ms, recall@10 equal within 0.001 (the shortfall widens).
OVERSAMPLE = 1.5
# A list of text ids goes to exact search only after each id is mapped to its key (~0.36 us an id); the graph
# checks its candidates against the list instead, and wins from about 6 % (10 %: 4.4 vs 7.1 ms; 20 %: 4.1 vs 10.9).
TEXT_IDS_GRAPH_FRACTION = 0.06


@dataclasses.dataclass
class Generation:
    number: int
    index: Index
    max_key: int
    path: str


class CorpusState:
    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.name: str = meta["name"]
        self.dim: int = meta["dim"]
        self.metric: str = meta["metric"]
        self.lock = threading.RLock()  # adds, rebuilds and swaps of this corpus only
        self.generation: Generation | None = None
        self.vectors = np.zeros((0, self.dim), dtype=np.float32)  # row = key
        self.live = np.zeros(0, dtype=bool)
        self.ids = np.empty(0, dtype=object)  # key -> id text (None when dead)
        self.texts = np.empty(0, dtype=object)  # key -> chunk text
        self.metas = np.empty(0, dtype=object)  # key -> metadata JSON text
        self._meta_index: dict[str, dict[str, np.ndarray]] | None = None
        self._lookup: dict[str, int] | None = None
        self._int_lookup: IntIds | None = None
        self._int_checked = False  # _int_lookup is current (None then means: the ids are text)
        self._changes = 0  # put/kill count: an integer index built across a change is not kept
        self._live_counts: dict[int, int] = {}  # prefix length -> live rows in it; cleared when `live` changes
        self.loaded = False
        self.built_at = float("-inf")  # monotonic time of this process's last index build of the corpus
        self.synced: int | None = None  # the lake snapshot the state mirrors (None: it wrote every row itself)
        self.table_id: int | None = None  # its DuckLake table: another id means the corpus was replaced
        self._next_key = 0

    # -- state ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._live_count(len(self.live))

    def _live_count(self, prefix: int) -> int:
        # cached: a sum over 100K flags is ~10-30 us, paid twice per search otherwise
        count = self._live_counts.get(prefix)
        if count is None:
            count = self._live_counts[prefix] = int(self.live[:prefix].sum())
        return count

    @property
    def next_key(self) -> int:
        return self._next_key

    def put(self, keys: np.ndarray, vectors: np.ndarray, ids: pa.Array | list[str], texts: pa.Array | list[str],
            metas: pa.Array | list[str]) -> None:
        """Record rows (keys ascending, beyond the current range, or reloads of known keys)."""
        if len(keys) == 0:
            return
        known = keys[keys < len(self.live)]
        reload = bool(len(known)) and bool(self.live[known].any())
        top = int(keys.max()) + 1
        if top > len(self.live):
            grow = max(top - len(self.live), len(self.live) // 2)  # amortised growth for many small adds
            self.vectors = np.concatenate([self.vectors, np.zeros((grow, self.dim), dtype=np.float32)])
            self.live = np.concatenate([self.live, np.zeros(grow, dtype=bool)])
            self.ids = np.concatenate([self.ids, np.full(grow, None, dtype=object)])
            self.texts = np.concatenate([self.texts, np.full(grow, None, dtype=object)])
            self.metas = np.concatenate([self.metas, np.full(grow, None, dtype=object)])
        self.vectors[keys] = vectors
        self.live[keys] = True
        self.ids[keys] = _objects(ids)
        self.texts[keys] = _objects(texts)
        self.metas[keys] = _objects(metas)
        self._next_key = max(self._next_key, top)
        if self._lookup is not None:  # kept up to date: rebuilding it per add made small adds O(corpus)
            if reload:
                self._lookup = None
            else:
                self._lookup.update(zip(self.ids[keys].tolist(), keys.tolist()))
        self._int_lookup, self._int_checked = None, False
        self._changes += 1
        self._meta_index = None
        self._live_counts = {}

    def kill(self, keys: np.ndarray) -> None:
        keys = keys[keys < len(self.live)]
        if self._lookup is not None:
            for ident, key in zip(self.ids[keys].tolist(), keys.tolist()):
                if ident is not None and self._lookup.get(ident) == key:
                    del self._lookup[ident]
        self.live[keys] = False
        self.ids[keys] = None
        self._int_lookup, self._int_checked = None, False
        self._changes += 1
        self._live_counts = {}

    def metadata_index(self) -> dict[str, dict[str, np.ndarray]]:
        """field -> canonical JSON value -> keys (dead keys included; callers mask with `live`)."""
        index = self._meta_index
        if index is None:
            lists: dict[str, dict[str, list[int]]] = {}
            for key in np.flatnonzero(self.live):
                raw = self.metas[key]
                for field, value in (orjson.loads(raw) if raw else {}).items():
                    lists.setdefault(field, {}).setdefault(canonical(value), []).append(int(key))
            index = {f: {v: np.asarray(k, dtype=np.int64) for v, k in vals.items()} for f, vals in lists.items()}
            self._meta_index = index
        return index

    def keys_for_ids(self, ids: pa.Array | np.ndarray | list[Any] | JsonStrings) -> np.ndarray:
        """Live keys of the given ids, sorted (unknown ids are ignored)."""
        return np.flatnonzero(self.id_mask(ids))

    def id_mask(self, ids: pa.Array | np.ndarray | list[Any] | JsonStrings) -> np.ndarray:
        """A mask over the keys: the live rows whose id is in `ids` (unknown ids are ignored).

        Integer-like ids (the common case) go through `IntIds` (dense ids: one numba pass); other ids
        through a dict (measured faster than pandas' object index or Arrow's index_in for 50K strings).
        Both are built once per change of the corpus.
        """
        if isinstance(ids, JsonStrings):
            ids = list(ids)
        if self._text_keyed() and isinstance(ids, (list, tuple)):  # text ids from Python: skip Arrow
            return self._mask_of(self._text_keys(ids))
        arr = _as_arrow(ids).drop_null()
        int_lookup = self._int_lookup  # read once: an add may reset it meanwhile
        if int_lookup is not None:
            try:
                ints = arr if arr.type == pa.int64() else pc.cast(arr, pa.int64())
                return int_lookup.mask(ints.to_numpy(zero_copy_only=False), self.live)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # some id is not an integer: it can only match as text
        return self._mask_of(self._text_keys(arr.cast(pa.string()).to_pylist()))

    def _text_keys(self, ids: Sequence[Any]) -> np.ndarray:
        """Keys of ids looked up as text. `map` with a default runs the 50K dict lookups in C (2.4x
        faster than a generator); ids that are not strings (7 for "7") are retried as text."""
        lookup = self._id_lookup()
        try:
            keys = np.fromiter(map(lookup.get, ids, itertools.repeat(-1)), dtype=np.int64, count=len(ids))
        except TypeError:  # an unhashable id (a list, a dict): look each id up as its text, one by one
            found = (lookup.get(i if isinstance(i, str) else str(i), -1) for i in ids if i is not None)
            keys = np.fromiter(found, dtype=np.int64)
            return keys[keys >= 0]
        missed = np.flatnonzero(keys < 0)
        if len(missed):
            retry = (str(ids[j]) for j in missed if ids[j] is not None and not isinstance(ids[j], str))
            again = np.fromiter((k for k in map(lookup.get, retry) if k is not None), dtype=np.int64)
            keys = np.concatenate([keys[keys >= 0], again])
        return keys

    def _text_keyed(self) -> bool:
        """True when the ids are not all canonical integers. Builds the id -> key dict once (then kept up
        to date by put/kill) and the integer index once per change of the corpus."""
        lookup = self._id_lookup()
        if not self._int_checked:
            changes = self._changes
            texts = np.fromiter(lookup.keys(), dtype=object, count=len(lookup)).astype(str)
            live_keys = np.fromiter(lookup.values(), dtype=np.int64, count=len(lookup))
            int_lookup = None
            try:
                ints = texts.astype(np.int64)
                if (ints.astype(str) == texts).all():  # canonical integers only ("007" is not 7)
                    int_lookup = IntIds(ints, live_keys)
            except (ValueError, OverflowError):
                pass
            if changes == self._changes:
                self._int_lookup, self._int_checked = int_lookup, True
            return int_lookup is None
        return self._int_lookup is None

    def keys_of_texts(self, ids: Sequence[str]) -> np.ndarray:
        """Live keys of text ids, sorted, through the dict alone (the add path: no integer index to rebuild)."""
        return np.flatnonzero(self._mask_of(self._text_keys(ids)))

    def _id_lookup(self) -> dict[str, int]:
        lookup = self._lookup
        if lookup is None:
            live_keys = np.flatnonzero(self.live).astype(np.int64)
            lookup = self._lookup = dict(zip(self.ids[live_keys].astype(str).tolist(), live_keys.tolist()))
        return lookup

    def _mask_of(self, keys: np.ndarray) -> np.ndarray:
        # a mask also dedupes and sorts (flatnonzero): an O(corpus) memset, far cheaper than np.unique's hashing
        mask = np.zeros(len(self.live), dtype=bool)
        mask[keys] = True
        return mask

    def key_of(self, ident: Any) -> int | None:
        """The live key of one id (ids are kept as text: 7 finds "7"), by the id -> key dict."""
        return self._id_lookup().get(ident if isinstance(ident, str) else str(ident))

    # -- search --------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(keys, scores) of the k best live rows, optionally restricted to the `allowed` keys."""
        gen = self.generation  # a swap during this search doesn't affect it
        n_live = self.size
        if k <= 0 or n_live == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if allowed is None:
            # a corpus small enough for exact search gets exact answers (a graph of near-duplicates can miss one)
            found = None if gen is None or n_live <= EXACT_MIN_ROWS else self._hnsw(gen, query, k, None, n_live)
            return found if found is not None else exact_top_k(self.vectors, np.flatnonzero(self.live), query, k,
                                                               self.metric)
        allowed = allowed[self.live[allowed]] if len(allowed) else allowed
        if len(allowed) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if gen is None or len(allowed) <= self._exact_limit(n_live):
            return exact_top_k(self.vectors, allowed, query, k, self.metric)
        return self._graph_search(gen, query, k, self._mask_of(allowed), len(allowed))

    def _graph_search(self, gen: Generation, query: np.ndarray, k: int, mask: np.ndarray,
                      n_allowed: int) -> tuple[np.ndarray, np.ndarray]:
        """The graph over the live rows set in `mask` (exact search when it cannot reach k of them)."""
        found = self._hnsw(gen, query, k, lambda keys: mask[keys], n_allowed)
        return found if found is not None else exact_top_k(self.vectors, np.flatnonzero(mask), query, k, self.metric)

    def search_ids(self, query: np.ndarray, k: int, ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """`search` among the rows of `ids`, which become a mask of live rows (`id_mask`). A long list of text
        ids is not mapped at all when the graph can answer: HNSW candidates are kept when their id is in the
        list (a set intersection over the list in C, ~1 ms per 50K ids, where mapping every id to its key
        costs ~7 ms)."""
        gen = self.generation
        if (gen is not None and len(ids) > max(EXACT_MIN_ROWS, TEXT_IDS_GRAPH_FRACTION * self.size)
                and self._text_keyed()):
            accept = self._text_acceptor(ids)
            if accept is not None:
                found = self._hnsw(gen, query, k, accept, len(ids))
                if found is not None:
                    return found
        mask = self.id_mask(ids)
        n_allowed = int(np.count_nonzero(mask))
        if k > 0 and gen is not None and n_allowed > self._exact_limit(self.size):
            return self._graph_search(gen, query, k, mask, n_allowed)  # the mask as it is: not rebuilt from keys
        return self.search(query, k, np.flatnonzero(mask))

    def _text_acceptor(self, ids: Sequence[Any]) -> Callable[[np.ndarray], np.ndarray] | None:
        """For a list of text ids: which HNSW candidates (keys) have an id in it; None for other lists."""
        if isinstance(ids, JsonStrings):  # from SQL: hashed in numba, no Python string per id
            return lambda keys: ids.contains(self.ids[keys].tolist())
        if not isinstance(ids, (list, tuple)) or set(map(type, ids)) != {str}:
            return None

        def accept(keys: np.ndarray) -> np.ndarray:
            candidates = self.ids[keys].tolist()
            hits = set(candidates).intersection(ids)
            return np.fromiter((c in hits for c in candidates), dtype=bool, count=len(candidates))

        return accept

    @staticmethod
    def _exact_limit(n_live: int) -> float:
        return max(EXACT_MIN_ROWS, EXACT_FRACTION * n_live)

    def _hnsw(self, gen: Generation, query: np.ndarray, k: int, accept: Callable[[np.ndarray], np.ndarray] | None,
              n_allowed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """HNSW with oversampling, widened until k accepted rows are found; None when the graph cannot
        reach enough of them (the caller then searches exactly, which is always right)."""
        want = min(k, n_allowed)
        rescore = self.meta["dtype"] in hnsw.QUANTIZED
        need = want * hnsw.RESCORE if rescore else want
        size = len(gen.index)
        frac = min(1.0, n_allowed / max(self.size, 1))
        # a filter keeps ~frac of the candidates: oversample past that; unfiltered, only dead rows need room
        wanted = need if accept is None else math.ceil(OVERSAMPLE * need / frac)
        count = min(size, wanted + (size - self._indexed_live(gen)))
        while True:
            res = gen.index.search(query, count)
            keys = np.asarray(res.keys, dtype=np.int64)
            ok = keys < len(self.live)
            ok[ok] = self.live[keys[ok]]
            if accept is not None and ok.any():
                ok[ok] = accept(keys[ok])
            keys = keys[ok]
            if len(keys) >= need or count >= size:
                break
            count = min(size, count * 4)
        if len(keys) < want:
            return None
        if rescore:  # quantised distances pick the candidates; the f32 matrix orders them
            return exact_top_k(self.vectors, keys, query, k, self.metric)
        return keys[:k], self._scores(np.asarray(res.distances, dtype=np.float32)[ok][:k])

    def search_generation(self, gen: Generation, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """An unfiltered search through `gen` (not necessarily the active one), as `search` would run it."""
        found = self._hnsw(gen, query, k, None, self.size)
        return found if found is not None else exact_top_k(self.vectors, np.flatnonzero(self.live), query, k,
                                                           self.metric)

    def ids_alive(self) -> list[str]:
        """The ids of the live rows."""
        return self.ids[np.flatnonzero(self.live)].tolist()

    def live_after(self, max_key: int) -> np.ndarray:
        """Live keys above `max_key`: rows added after a generation was built."""
        keys = np.flatnonzero(self.live)
        return keys[keys > max_key]

    def _indexed_live(self, gen: Generation) -> int:
        return self._live_count(gen.max_key + 1) if gen.max_key >= 0 else 0

    def row(self, key: int) -> tuple[str, str, dict[str, Any]]:
        """(id, text, metadata) of a key."""
        raw = self.metas[key]
        return self.ids[key], self.texts[key], orjson.loads(raw) if raw else {}

    def cosines(self, keys: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Cosine of each key's vector with `query`, whatever the metric (an l2sq score is a negated distance:
        the relevance filter needs cosines)."""
        rows = self.vectors[keys]
        norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
        return (rows @ query) / np.maximum(norms, 1e-12)

    def _scores(self, distances: np.ndarray) -> np.ndarray:
        # usearch distances: cos/ip -> 1 - similarity; l2sq -> squared distance. Higher score is better.
        return -distances if self.metric == "l2sq" else 1.0 - distances


def _as_arrow(ids: Any) -> pa.Array:
    """ids as one Arrow array without a Python call per element when they already are typed."""
    if isinstance(ids, pa.ChunkedArray):
        return ids.combine_chunks()
    if isinstance(ids, pa.Array):
        return ids
    if isinstance(ids, (list, tuple)) and ids and type(ids[0]) is int:
        ids = np.array(ids)  # one C loop, 1.5x faster than Arrow's; a non-int element leaves it non-integer
        if ids.dtype != np.int64:
            ids = ids.tolist()
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu":
        return pa.array(ids.astype(np.int64, copy=False))
    try:
        return pa.array(ids)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: compare as text
        return pa.array([None if i is None else str(i) for i in ids], type=pa.string())


def _objects(values: pa.Array | list[Any]) -> np.ndarray:
    return np.asarray(values.to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else list(values),
                      dtype=object)
