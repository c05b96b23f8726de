"""Numba kernels of the drift statistics: KS per dimension, the RBF kernel matrix, midranks, logistic descent,
and a finiteness scan of the inputs.

Sorting is left to numpy (its SIMD sort is ~4x faster than numba's on float32 columns here); the kernels
walk what numpy sorted. All are single-threaded and release the GIL, like lakehouse.engine.vectors.kernels:
no numba threading layer, so concurrent callers (the HTTP server's threads) are safe.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_PI2_8 = math.pi * math.pi / 8.0


@numba.njit(cache=True, nogil=True)
def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's limiting distribution (scipy.special.kolmogorov), to ~1e-15.

    Two series that each converge in four terms on their side of 1.18: the theta-function form below
    (its CDF), the alternating sum 2 * sum (-1)^(k-1) exp(-2 k^2 x^2) above.
    """
    if x <= 0.0:
        return 1.0
    if x < 1.18:
        q = math.exp(-_PI2_8 / (x * x))
        q8 = q ** 8  # q^((2k-1)^2) = q * (q^8)^(k(k-1)/2)
        cdf = _SQRT_2PI / x * q * (1.0 + q8 * (1.0 + q8 * q8 * (1.0 + q8 * q8 * q8)))
        return 1.0 - cdf
    q = math.exp(-2.0 * x * x)
    return 2.0 * (q - q ** 4 + q ** 9 - q ** 16)


@numba.njit(cache=True, nogil=True)
def ks_p_value(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic `d`: Kolmogorov's limiting distribution
    at (sqrt(en) + 0.12 + 0.11 / sqrt(en)) * d, en = n m / (n + m) (Stephens' 1970 small-sample correction,
    as in Numerical Recipes' probks). scipy's method='asymp' instead evaluates the exact one-sample
    distribution kstwo at round(en); the two agree within a few percent (relative) for en >= 100."""
    en = math.sqrt(n * m / (n + m))
    return min(1.0, max(0.0, kolmogorov_sf((en + 0.12 + 0.11 / en) * d)))


@numba.njit(cache=True, nogil=True)
def ks_sorted_columns(xs: np.ndarray, ys: np.ndarray, stat: np.ndarray, p: np.ndarray) -> None:
    """KS statistic and p-value of each row pair: xs (d, n) and ys (d, m), every row sorted ascending.

    The ECDFs are compared after all copies of a value are passed, so ties (the zeros of sparse
    embeddings) are handled as scipy.stats.ks_2samp does.
    """
    n, m = xs.shape[1], ys.shape[1]
    for j in range(xs.shape[0]):
        x, y = xs[j], ys[j]
        i = k = 0
        best = 0.0
        while i < n and k < m:
            v = min(x[i], y[k])
            while i < n and x[i] <= v:
                i += 1
            while k < m and y[k] <= v:
                k += 1
            diff = abs(i / n - k / m)
            if diff > best:
                best = diff
        # once one sample is used up its ECDF is 1 and the other's only climbs towards it: no larger gap
        stat[j] = best
        p[j] = ks_p_value(best, n, m)


@numba.njit(cache=True, nogil=True)
def first_nonfinite(x: np.ndarray) -> int:
    """Flat index of the first NaN or infinity in a C-contiguous matrix, or -1 (no temporary mask)."""
    flat = x.ravel()
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return i
    return -1


@numba.njit(cache=True, nogil=True)
def pair_sq_distances(gram: np.ndarray, sq_norms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared distances of every pair i < j of `rows`, read from the Gram matrix (for the median heuristic)."""
    k = rows.shape[0]
    out = np.empty(k * (k - 1) // 2, dtype=np.float64)
    t = 0
    for a in range(k):
        i = rows[a]
        for b in range(a + 1, k):
            j = rows[b]
            out[t] = max(sq_norms[i] + sq_norms[j] - 2.0 * gram[i, j], 0.0)
            t += 1
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def rbf_from_gram(gram: np.ndarray, sq_norms: np.ndarray, gamma: float) -> None:
    """Turn a symmetric Gram matrix into exp(-gamma * ||z_i - z_j||^2) in place (diagonal exactly 1)."""
    n = gram.shape[0]
    g = np.float32(gamma)
    for i in range(n):
        gram[i, i] = 1.0
        for j in range(i + 1, n):
            d2 = max(sq_norms[i] + sq_norms[j] - 2.0 * gram[i, j], np.float32(0.0))
            v = math.exp(-g * d2)
            gram[i, j] = v
            gram[j, i] = v


@numba.njit(cache=True, nogil=True)
def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing their average rank (scipy.stats.rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    n = values.shape[0]
    ranks = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        r = 0.5 * (i + j) + 1.0
        for t in range(i, j + 1):
            ranks[order[t]] = r
        i = j + 1
    return ranks


@numba.njit(cache=True, nogil=True)
def tie_term(sorted_values: np.ndarray) -> float:
    """Sum of t^3 - t over the groups of tied values of a sorted array (the Mann-Whitney tie correction)."""
    total = 0.0
    n = sorted_values.shape[0]
    i = 0
    while i < n:
        j = i
        while j + 1 < n and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        t = j - i + 1
        total += t * t * t - t
        i = j + 1
    return total


@numba.njit(cache=True, nogil=True, fastmath=True)
def _matvec(x: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        acc = np.float32(0.0)
        for j in range(x.shape[1]):
            acc += x[i, j] * v[j]
        out[i] = acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rmatvec(x: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:
    out[:] = 0.0
    for i in range(x.shape[0]):
        ri = r[i]
        for j in range(x.shape[1]):
            out[j] += ri * x[i, j]


@numba.njit(cache=True, nogil=True, fastmath=True)
def logistic_descent(x: np.ndarray, target: np.ndarray, share: np.ndarray, penalty: np.ndarray,
                     steps: int) -> np.ndarray:
    """Weights minimising sum_i share_i * logloss(x_i . w, target_i) + sum_j penalty_j w_j^2 / 2, by `steps`
    of Nesterov-accelerated gradient descent with step 1/L (L from 20 power iterations).

    In numba rather than numpy: the ~250 small matrix-vector products each cost a BLAS call, and
    multithreaded BLAS slows such calls 10-20x when the cores are busy with other work.
    """
    n, d = x.shape
    z = np.empty(n, dtype=np.float32)
    g = np.empty(d, dtype=np.float32)
    v = np.full(d, np.float32(1.0 / math.sqrt(d)))
    top = np.float32(1.0)
    for _ in range(20):  # top eigenvalue of x' diag(share) x
        _matvec(x, v, z)
        z *= share
        _rmatvec(x, z, g)
        top = np.float32(math.sqrt(np.sum(g * g)))
        if top == 0.0:
            break
        v = g / top
    step = np.float32(1.0 / (top / 4.0 + penalty.max()))
    w = np.zeros(d, dtype=np.float32)
    look = np.zeros(d, dtype=np.float32)
    t = 1.0
    for _ in range(steps):
        _matvec(x, look, z)
        for i in range(n):  # sigmoid as 0.5 (1 + tanh(z / 2)): no overflow
            z[i] = share[i] * (np.float32(0.5) * (np.float32(1.0) + math.tanh(np.float32(0.5) * z[i])) - target[i])
        _rmatvec(x, z, g)
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        momentum = np.float32((t - 1.0) / t_next)
        for j in range(d):
            w_next = look[j] - step * (g[j] + penalty[j] * look[j])
            look[j] = w_next + momentum * (w_next - w[j])
            w[j] = w_next
        t = t_next
    return w
