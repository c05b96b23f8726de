"""Exact top-k over a subset of rows, without gathering the subset (numba)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, fastmath=True)
def _subset_scores(matrix: np.ndarray, rows: np.ndarray, query: np.ndarray, out: np.ndarray, l2: bool) -> None:
    # higher is better: the dot product, or the negated squared L2 distance (the branch is loop-invariant)
    d = matrix.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        acc = np.float32(0.0)
        if l2:
            for j in range(d):
                diff = matrix[r, j] - query[j]
                acc -= diff * diff
        else:
            for j in range(d):
                acc += matrix[r, j] * query[j]
        out[i] = acc


def exact_top_k(matrix: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int,
                metric: str = "cos") -> tuple[np.ndarray, np.ndarray]:
    """Rows (from `rows`) of the k best scores, best first, and those scores (higher is better).

    For "cos" the matrix rows and the query are L2-normalised, so the dot product is the cosine.
    """
    if rows.size == 0 or k <= 0:
        return rows[:0], np.zeros(0, dtype=np.float32)
    scores = np.empty(rows.shape[0], dtype=np.float32)
    q = np.ascontiguousarray(query, dtype=np.float32)
    _subset_scores(matrix, rows, q, scores, metric == "l2sq")
    k = min(k, rows.shape[0])
    top = np.argpartition(-scores, k - 1)[:k] if k < rows.shape[0] else np.arange(rows.shape[0])
    top = top[np.argsort(-scores[top], kind="stable")]
    return rows[top], scores[top]


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel."""
    m = np.zeros((2, 2), dtype=np.float32)
    exact_top_k(m, np.array([0, 1], dtype=np.int64), np.zeros(2, dtype=np.float32), 1)
