"""HNSW sidecar files (usearch): build, save atomically, checksum, load."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

from lakehouse.engine.atomic_files import replace_atomically
from lakehouse.errors import InvalidInput

log = logging.getLogger(__name__)

# Measured on 100K x 384 clustered (benchmarks/vectors.py, 2 cores): expansion_add 64 builds in 16-18 s with f16
# (128: 28 s), 10-12 s with i8. With i8, connectivity 24 and expansion_search 96 beat 16 / 128 on both recall@10
# (0.997 vs 0.995) and query time (-0.05 to -0.2 ms), at about the same build time.
DEFAULT_PARAMS: dict[str, Any] = {"connectivity": 24, "expansion_add": 64, "expansion_search": 96}
# Cos corpora hold unit vectors (normalised on add), so usearch's inner product is their cosine: ~10 % cheaper
# per distance than its "cos", which re-normalises both sides every time.
METRICS = {"cos": "ip", "ip": "ip", "l2sq": "l2sq"}
DTYPES = ("i8", "f16", "f32")
# i8 graphs are searched for RESCORE x k candidates, re-scored exactly against the corpus's f32 matrix (kept in
# memory anyway). Measured on the same 100K: build 11.1 s vs f16 18.8 s (hnswlib 12.7 s in that run), recall@10
# 0.997 vs 0.994, query 0.49 vs 0.76 ms. i8 quantises components in [-1, 1], so it needs unit vectors: cos only.
QUANTIZED = ("i8",)
RESCORE = 4


def default_dtype(metric: str) -> str:
    return "i8" if metric == "cos" else "f16"


def check_dtype(metric: str, dtype: str) -> None:
    """Raise InvalidInput unless `dtype` can index a corpus of `metric`."""
    if dtype not in DTYPES:
        raise InvalidInput(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}", code="invalid_dtype")
    if dtype in QUANTIZED and metric != "cos":
        raise InvalidInput(f"dtype {dtype!r} quantises unit vectors and needs metric 'cos'; use f16 or f32 for {metric!r}",
                           code="invalid_dtype")


def build(vectors: np.ndarray, keys: np.ndarray, *, metric: str, dtype: str, params: dict[str, Any],
          threads: int = 0) -> Index:
    index = Index(ndim=vectors.shape[1], metric=METRICS[metric], dtype=dtype,
                  connectivity=params["connectivity"], expansion_add=params["expansion_add"],
                  expansion_search=params["expansion_search"])
    if len(keys):
        index.add(keys, vectors, threads=threads or (os.cpu_count() or 1))
    return index


def save(index: Index, path: Path) -> str:
    """Write the index to `path` atomically (`atomic_files`); return the file's SHA-256."""
    digest = ""

    def write(tmp: Path) -> None:
        nonlocal digest
        index.save(str(tmp))
        digest = file_sha256(tmp)

    replace_atomically(path, write)
    return digest


def save_local_copy(index: Index, path: Path) -> None:
    """Save this node's copy of a generation another node built, its checksum beside it (`.sha256`): the
    catalog's checksum is of the other node's file. A reader that sees one file of a pair written by another
    process without the other finds them mismatched, and rebuilds: never a half-written file."""
    digest = save(index, path)
    replace_atomically(path.with_suffix(".sha256"), lambda tmp: tmp.write_text(digest + "\n"))


def load_local_copy(path: Path, *, expansion_search: int) -> tuple[Index | None, str]:
    checksum = path.with_suffix(".sha256")
    if not path.is_file() or not checksum.is_file():
        return None, "missing"
    return load(path, checksum.read_text().strip(), expansion_search=expansion_search)


def remove_local(path: Path) -> None:
    """Delete this node's sidecar of a generation (and the checksum of a copy made here)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".sha256").unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def load(path: Path, sha256: str, *, expansion_search: int) -> tuple[Index | None, str]:
    """(the index at `path`, "") if it exists and matches its recorded checksum, else (None, "missing" or
    "corrupt"). The index is read into memory, never memory-mapped: a file truncated or rewritten under a
    running process (SIGBUS/SIGSEGV through a mapping) cannot touch the copy searches use."""
    if not path.is_file():
        log.warning("index sidecar %s is missing; it will be rebuilt from the lake", path)
        return None, "missing"
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("index sidecar %s could not be read (%s); it will be rebuilt", path, exc)
        return None, "corrupt"
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        log.warning("index sidecar %s is corrupt (sha256 %s, expected %s); it will be rebuilt",
                    path, actual[:12], sha256[:12])
        return None, "corrupt"
    try:  # restored from the bytes already checked: the file may change again before a second read
        index = Index.restore(np.frombuffer(data, dtype=np.uint8), view=False)
    except Exception as exc:  # usearch raises plain RuntimeError/ValueError on bad files
        log.warning("index sidecar %s could not be read (%s); it will be rebuilt", path, exc)
        return None, "corrupt"
    if index is None:
        return None, "corrupt"
    index.expansion_search = expansion_search
    return index, ""
