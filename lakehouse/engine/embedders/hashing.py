"""`hash` / `hash:<dim>`: a deterministic feature-hashing embedder (no model, no network).

Features are lowercase words (regex `\\w+`) and word bigrams. Each feature's utf-8 bytes are
hashed with 64-bit FNV-1a plus a murmur3 finaliser (stable across processes, platforms and
`PYTHONHASHSEED`, unlike `hash()`); the low bits pick a bucket, the top bit a sign. Bucket
counts get sublinear tf (sign * (1 + ln|count|), equal to per-term sublinear tf wherever
buckets do not collide), then rows are L2-normalised. A text with no words hashes one fixed
sentinel feature so every row has unit length.

It is for tests and as a lexical fallback: texts sharing words score a higher cosine than
unrelated texts, nothing more semantic than that.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lakehouse.engine.embedders.base import Embedder, register
from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    import httpx

    from lakehouse.settings import Settings

DEFAULT_DIM = 384
MAX_DIM = 1 << 16
_WORD = re.compile(r"\w+")
_SEP = 0x20  # words are joined with a space; \w never matches one, so bigrams are unambiguous
_EMPTY = b"\x00"  # the sentinel feature of a text without words; \w never produces it

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def _hash_rows(data, starts, ends, dim, out):  # noqa: ANN001 - compiled by numba, see _kernel
    """For each text (data[starts[i]:ends[i]], words joined by one 0x20) fill out[i]."""
    prime = np.uint64(_FNV_PRIME)
    for row in range(starts.shape[0]):
        lo, hi = starts[row], ends[row]
        prev_start = -1
        pos = lo
        while pos < hi:
            end = pos
            while end < hi and data[end] != _SEP:
                end += 1
            # feature 0 is the word data[pos:end]; feature 1 the bigram data[prev_start:end],
            # which is "previous word" + " " + "word" because words are joined by one space.
            for feature in range(1 if prev_start < 0 else 2):
                h = np.uint64(_FNV_OFFSET)
                for k in range(pos if feature == 0 else prev_start, end):
                    h = (h ^ np.uint64(data[k])) * prime
                # murmur3 fmix64: FNV-1a's low bits are weak for short keys; mixing spreads them.
                h ^= h >> np.uint64(33)
                h *= np.uint64(0xFF51AFD7ED558CCD)
                h ^= h >> np.uint64(33)
                h *= np.uint64(0xC4CEB93FE53F1A85)
                h ^= h >> np.uint64(33)
                bucket = np.int64(h % np.uint64(dim))
                if h >> np.uint64(63):
                    out[row, bucket] -= 1.0
                else:
                    out[row, bucket] += 1.0
            prev_start = pos
            pos = end + 1
        # sublinear tf per bucket
        for j in range(dim):
            c = out[row, j]
            if c > 0.0:
                out[row, j] = 1.0 + np.log(c)
            elif c < 0.0:
                out[row, j] = -1.0 - np.log(-c)


@functools.cache
def _kernel() -> Callable[..., None]:
    """JIT the kernel on first use; numba's on-disk cache makes later processes start fast."""
    import numba

    return numba.njit(cache=True)(_hash_rows)


def _pack(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokenise in Python (re's \\w is the Unicode-correct word class) into one byte buffer."""
    chunks = [" ".join(_WORD.findall(t.lower())).encode("utf-8") or _EMPTY for t in texts]
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    return np.frombuffer(b"".join(chunks), dtype=np.uint8), starts, ends


def hash_features(texts: list[str], dim: int) -> np.ndarray:
    """Un-normalised signed, sublinear bucket counts, float32 (len(texts), dim)."""
    data, starts, ends = _pack(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if len(texts):
        _kernel()(data, starts, ends, np.int64(dim), out)
    return out


@register("hash")
class HashEmbedder(Embedder):
    """Deterministic feature hashing; `hash` is 384-d, `hash:256` picks the dimension."""

    spec_help = "hash[:DIM]"
    batch_size = 65_536  # no model to feed: big batches only amortise the Python tokenising
    sort_by_length = False
    progress_min_texts = 1_000_000

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        if not 2 <= dim <= MAX_DIM:
            raise InvalidInput(f"hash embedder dimension must be 2..{MAX_DIM}, got {dim}")
        self.dim = dim
        self.name = "hash" if dim == DEFAULT_DIM else f"hash:{dim}"
        self.id = f"hash:fnv1a-fmix64-uni-bi-subtf:v1:{dim}"

    @classmethod
    def from_spec(cls, arg: str | None, settings: Settings, client: httpx.Client | None = None) -> Embedder:
        if not arg:
            return cls()
        try:
            dim = int(arg)
        except ValueError:
            raise InvalidInput(f"hash embedder spec is hash[:DIM], got dimension {arg!r}") from None
        return cls(dim)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return hash_features(texts, self.dim)
