"""A filter's id list as DuckDB hands it over (the JSON text of `list(id)`), read without a Python object per id.

Integers become an int64 array. For text ids, orjson makes one Python string per id (50K ids: ~2 ms) and
checking HNSW candidates against a set built from them costs about as much again per search; here one numba
pass cuts the text into byte ranges and another hashes them into an open-addressing table (FNV-1a), where a
candidate id is looked up by its hash and confirmed byte by byte, so a hash collision can never let a row through.
"""

from __future__ import annotations

from collections.abc import Iterator

import numba
import numpy as np

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


class JsonStrings:
    """A JSON list of plain strings as DuckDB's to_json writes it (no spaces, no escapes): UTF-8 bytes and the
    byte range of each string. Iterating decodes them (for the paths that map ids one by one)."""

    __slots__ = ("_buf", "_ends", "_hashes", "_starts", "_table")

    def __init__(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self._buf, self._starts, self._ends = buf, starts, ends
        self._table: np.ndarray | None = None
        self._hashes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[str]:
        raw = self._buf.tobytes()
        return (raw[s:e].decode("utf-8") for s, e in zip(self._starts.tolist(), self._ends.tolist()))

    def contains(self, candidates: list[str]) -> np.ndarray:
        """For each candidate id, whether it is one of these strings."""
        if self._table is None:  # built on the first call, kept for the widening rounds of the same search
            self._table = np.full(1 << max(4, (2 * len(self)).bit_length()), -1, dtype=np.int64)
            self._hashes = np.empty(len(self), dtype=np.uint64)
            _index(self._buf, self._starts, self._ends, self._hashes, self._table)
        encoded = [c.encode("utf-8") for c in candidates]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        out = np.zeros(len(encoded), dtype=bool)
        _lookup(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, self._buf, self._starts, self._ends,
                self._hashes, self._table, out)
        return out


def parse_json_strings(text: str) -> JsonStrings | None:
    """`["a","b"]` -> JsonStrings; None when the text is anything else (escapes, numbers, null, spaces, `[]`):
    the caller then reads it as JSON."""
    if not text.startswith('["'):
        return None
    buf = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    starts = np.empty(len(buf) // 3 + 1, dtype=np.int64)  # a string takes at least 3 bytes: "",
    ends = np.empty_like(starts)
    n = _tokens(buf, starts, ends)
    return None if n < 0 else JsonStrings(buf, starts[:n], ends[:n])


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _tokens(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> int:
    """Byte ranges of the strings of `["a","b"]` (the whole text); -1 unless it is exactly such a non-empty
    list of strings without escapes or control characters."""
    n = buf.shape[0]
    if n < 4 or buf[0] != 91 or buf[n - 1] != 93:  # '[' ... ']'
        return -1
    count = 0
    i = 1
    while True:
        if buf[i] != 34:  # '"'
            return -1
        i += 1
        start = i
        while i < n - 1 and buf[i] != 34:
            if buf[i] == 92 or buf[i] < 32:  # a backslash escape or a control character
                return -1
            i += 1
        if i >= n - 1:  # unterminated
            return -1
        starts[count] = start
        ends[count] = i
        count += 1
        i += 1
        if i == n - 1:
            return count
        if buf[i] != 44:  # ','
            return -1
        i += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _fnv(buf: np.ndarray, start: int, end: int) -> np.uint64:
    h = _FNV_OFFSET
    for i in range(start, end):
        h = (h ^ np.uint64(buf[i])) * _FNV_PRIME
    return h


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _index(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, hashes: np.ndarray, table: np.ndarray) -> None:
    slots = np.uint64(table.shape[0] - 1)
    for t in range(starts.shape[0]):
        h = _fnv(buf, starts[t], ends[t])
        hashes[t] = h
        slot = h & slots
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & slots
        table[slot] = t


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _lookup(cbuf: np.ndarray, offsets: np.ndarray, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
            hashes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    slots = np.uint64(table.shape[0] - 1)
    for c in range(out.shape[0]):
        cs, ce = offsets[c], offsets[c + 1]
        h = _fnv(cbuf, cs, ce)
        slot = h & slots
        while True:
            t = table[slot]
            if t < 0:
                break
            s = starts[t]
            if hashes[t] == h and ends[t] - s == ce - cs:
                same = True
                for i in range(ce - cs):
                    if buf[s + i] != cbuf[cs + i]:
                        same = False
                        break
                if same:
                    out[c] = True
                    break
            slot = (slot + np.uint64(1)) & slots


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _parse_int_list(buf: np.ndarray, out: np.ndarray) -> int:
    """Integers of a non-empty list body ("3,-1,2": no brackets or spaces, as DuckDB's to_json writes it)
    into `out`; returns how many, or -1 when the body is anything else (the caller then reads it as JSON)."""
    n = 0
    value = 0
    digits = 0
    neg = False
    for i in range(buf.shape[0]):
        c = np.int64(buf[i]) - 48
        if 0 <= c <= 9:
            value = value * 10 + c
            digits += 1
        elif c == -4:  # ','
            if digits == 0 or digits > 18:  # no number, or one that may not fit an int64
                return -1
            out[n] = -value if neg else value
            n += 1
            value = 0
            digits = 0
            neg = False
        elif c == -3 and digits == 0 and not neg:  # a leading '-'
            neg = True
        else:
            return -1
    if digits == 0 or digits > 18:
        return -1
    out[n] = -value if neg else value
    return n + 1


def parse_int_list(text: str) -> np.ndarray | None:
    """`[3,-1,2]` -> an int64 array (`[]` -> empty); None when the text is anything else (the caller then
    reads it as JSON). 3x faster than numpy's `fromstring`, which also warns on a partial parse: 50K ids in
    ~0.5 ms."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    body = text[1:-1]
    if not body:
        return np.zeros(0, dtype=np.int64)
    if body[0] not in "-0123456789":  # text ids: skip the copy
        return None
    buf = np.frombuffer(body.encode("ascii", "replace"), dtype=np.uint8)
    out = np.empty(len(buf) // 2 + 1, dtype=np.int64)  # at most one number per two characters
    n = _parse_int_list(buf, out)
    return out[:n] if n >= 0 else None
