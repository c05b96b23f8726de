"""The four drift tests between a reference sample `a` and a current sample `b` (float32, rows x dims).

Each returns a `DriftTest`; lakehouse.engine.drift.embedding validates the inputs, draws the seeded
subsamples and combines the verdicts. Defaults and the reasons for them are documented there.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

from lakehouse.engine.drift import kernels
from lakehouse.engine.drift.report import DriftTest

PSI_MODERATE = 0.1  # common practice: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift
PSI_EPSILON = 1e-4  # floor of a bin's share, so an empty bin adds a large but finite term
PSI_FIT_ROWS = 5_000  # rows of `a` the principal directions are fitted on
MEDIAN_ROWS = 1_000  # pooled rows whose pairwise distances give the median-heuristic bandwidth
LOGISTIC_STEPS = 100
LOGISTIC_L2 = 1e-3


def subsample(x: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most `rows` rows of `x`, drawn without replacement, kept in their original order."""
    if x.shape[0] <= rows:
        return x
    return x[np.sort(rng.choice(x.shape[0], rows, replace=False))]


# -- 1. Kolmogorov-Smirnov per dimension ------------------------------------------------------------
def ks_columns(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample KS statistic and asymptotic p-value (see kernels.ks_p_value) of every dimension."""
    xs = np.ascontiguousarray(a.T)
    ys = np.ascontiguousarray(b.T)
    xs.sort(axis=1)  # each column sorted once; numpy's SIMD sort, the numba kernel walks the result
    ys.sort(axis=1)
    stat = np.empty(a.shape[1], dtype=np.float64)
    p = np.empty(a.shape[1], dtype=np.float64)
    kernels.ks_sorted_columns(xs, ys, stat, p)
    return stat, p


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values: a dimension is a discovery at FDR level q when its value <= q."""
    d = p.shape[0]
    order = np.argsort(p, kind="stable")
    scaled = p[order] * d / np.arange(1, d + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(d, dtype=np.float64)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def ks_test(a: np.ndarray, b: np.ndarray, threshold: float, alpha: float) -> DriftTest:
    """Share of dimensions whose KS test rejects at FDR `alpha` (Benjamini-Hochberg); fires above `threshold`.

    The p-value is the smallest adjusted p-value: Simes' global test that no dimension moved.
    """
    stat, p = ks_columns(a, b)
    adjusted = benjamini_hochberg(p)
    drifted_dims = int(np.count_nonzero(adjusted <= alpha))
    share = drifted_dims / a.shape[1]
    top = np.argsort(-stat, kind="stable")[:5]
    return DriftTest("ks", share, float(adjusted.min()), threshold, share > threshold, {
        "correction": "benjamini-hochberg", "alpha": alpha, "dims": a.shape[1], "dims_drifted": drifted_dims,
        "max_statistic": float(stat.max()), "top_dims": [int(j) for j in top],
        "rows": [a.shape[0], b.shape[0]]})


# -- 2. PSI on principal-component projections -----------------------------------------------------
def principal_directions(x: np.ndarray, k: int) -> np.ndarray:
    """The top-k principal directions of `x` (d, k), each signed so its largest-magnitude entry is positive."""
    centred = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    # one BLAS thread: a d x d eigh is ~30 ms alone, but OpenBLAS's threads spin on a busy machine (0.1-3 s)
    with threadpool_limits(1, user_api="blas"):
        _, vecs = np.linalg.eigh((centred.T @ centred).astype(np.float64))
    top = vecs[:, ::-1][:, :k]
    signs = np.sign(top[np.abs(top).argmax(axis=0), np.arange(top.shape[1])])
    return (top * np.where(signs == 0, 1.0, signs)).astype(np.float32)


def psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """Population stability index of `current` against `reference`, in `bins` reference-quantile bins."""
    edges = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    p = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins) / reference.shape[0]
    q = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins) / current.shape[0]
    p, q = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def psi_bins_for(n: int, m: int, max_bins: int) -> int:
    """Fewer bins for small samples: PSI's noise floor is about (bins - 1)(1/n + 1/m), kept <= ~0.04."""
    return min(max_bins, max(2, min(n, m) // 50))


def psi_test(a: np.ndarray, b: np.ndarray, threshold: float, max_bins: int, projections: int,
             rng: np.random.Generator) -> DriftTest:
    """Largest PSI over the projections on the top principal directions of the reference `a`."""
    k = min(projections, a.shape[1])
    directions = principal_directions(subsample(a, PSI_FIT_ROWS, rng), k)
    pa, pb = a @ directions, b @ directions
    bins = psi_bins_for(a.shape[0], b.shape[0], max_bins)
    values = [psi(pa[:, j], pb[:, j], bins) for j in range(k)]
    worst = max(values)
    level = "significant" if worst > threshold else "moderate" if worst > PSI_MODERATE else "stable"
    return DriftTest("psi", worst, None, threshold, worst > threshold, {
        "projections": "pca", "psi": values, "bins": bins, "level": level, "moderate_threshold": PSI_MODERATE,
        "rows": [a.shape[0], b.shape[0]]})


# -- 3. MMD with an RBF kernel, permutation p-value -------------------------------------------------
def mmd2_splits(kernel: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 of each split of a kernel matrix's rows: splits[s] holds the rows of X, the rest are Y.

    All splits in one matrix product: u = K @ labels gives every row's sum over X, hence the within-X,
    cross and within-Y sums (the permutation test's few hundred splits cost one GEMM).
    """
    size = kernel.shape[0]
    count, n = splits.shape
    m = size - n
    labels = np.zeros((size, count), dtype=np.float32)
    labels[splits, np.arange(count)[:, None]] = 1.0
    u = kernel @ labels
    colsum = kernel.sum(axis=0, dtype=np.float64)
    s_xx = np.einsum("ij,ij->j", labels, u, dtype=np.float64)
    s_xy = colsum @ labels - s_xx
    s_yy = colsum.sum() - s_xx - 2.0 * s_xy
    # the RBF diagonal is 1: take n (and m) off the within sums for the unbiased estimator
    return (s_xx - n) / (n * (n - 1)) + (s_yy - m) / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def rbf_kernel_median(z: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """exp(-||z_i - z_j||^2 / (2 sigma^2)) of all rows of `z`, sigma the median pairwise distance
    (over at most MEDIAN_ROWS random rows), and sigma."""
    gram = z @ z.T
    sq = np.ascontiguousarray(np.diagonal(gram))
    pick = np.sort(rng.choice(z.shape[0], min(z.shape[0], MEDIAN_ROWS), replace=False))
    d2 = kernels.pair_sq_distances(gram, sq, pick)
    sigma2 = float(np.median(d2))
    if sigma2 <= 0.0:  # most rows identical: fall back to the mean, then to 1 (all identical: K is all ones)
        sigma2 = float(d2.mean()) or 1.0
    kernels.rbf_from_gram(gram, sq, 1.0 / (2.0 * sigma2))
    return gram, math.sqrt(sigma2)


def mmd_test(a: np.ndarray, b: np.ndarray, threshold: float, permutations: int,
             rng: np.random.Generator) -> DriftTest:
    """Unbiased MMD^2 with a median-heuristic RBF kernel; fires when the permutation p-value < `threshold`."""
    z = np.concatenate([a, b])
    kernel, sigma = rbf_kernel_median(z, rng)
    n = a.shape[0]
    shuffled = rng.permuted(np.tile(np.arange(z.shape[0]), (permutations, 1)), axis=1)[:, :n]
    values = mmd2_splits(kernel, np.vstack([np.arange(n), shuffled]))  # the observed split first
    p = (1 + int(np.count_nonzero(values[1:] >= values[0]))) / (permutations + 1)
    return DriftTest("mmd", float(values[0]), p, threshold, p < threshold, {
        "kernel": "rbf", "bandwidth": sigma, "permutations": permutations, "rows": [a.shape[0], b.shape[0]]})


# -- 4. Domain classifier ---------------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-balanced, L2-penalised logistic regression by Nesterov-accelerated gradient descent on
    standardised features (kernels.logistic_descent); returns (mean, scale, weights), the bias last."""
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    scale = x.std(axis=0, dtype=np.float64).astype(np.float32)
    scale[scale == 0] = 1.0
    xs = np.hstack([(x - mean) / scale, np.ones((x.shape[0], 1), dtype=np.float32)])
    share = np.where(y, 0.5 / y.sum(), 0.5 / (y.size - y.sum())).astype(np.float32)  # sums to 1, half per class
    penalty = np.full(xs.shape[1], LOGISTIC_L2, dtype=np.float32)
    penalty[-1] = 0.0  # the bias is not shrunk
    w = kernels.logistic_descent(xs, y.astype(np.float32), share, penalty, LOGISTIC_STEPS)
    return mean, scale, w


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Rank-based ROC AUC (ties count one half) and the one-sided Mann-Whitney p-value of AUC > 0.5
    (normal approximation with tie and continuity corrections)."""
    n1 = int(positive.sum())
    n0 = positive.size - n1
    total = n1 + n0
    u = float(kernels.midranks(scores)[positive].sum()) - n1 * (n1 + 1) / 2.0
    ties = kernels.tie_term(np.sort(scores))
    var = n1 * n0 / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0.0:  # every score tied
        return 0.5, 1.0
    z = (u - n1 * n0 / 2.0 - 0.5) / math.sqrt(var)
    return u / (n1 * n0), 0.5 * math.erfc(z / math.sqrt(2.0))


def classifier_test(a: np.ndarray, b: np.ndarray, threshold: float, alpha: float,
                    rng: np.random.Generator) -> DriftTest:
    """Held-out ROC AUC of a logistic regression telling `b` (label 1) from `a` on a seeded, stratified 50/50
    split; fires when AUC > `threshold` and the AUC is significant (Mann-Whitney p < `alpha`), so a small
    held-out set cannot fire on noise alone."""
    ia, ib = rng.permutation(a.shape[0]), rng.permutation(b.shape[0])
    ha, hb = a.shape[0] // 2, b.shape[0] // 2
    x_train = np.concatenate([a[ia[:ha]], b[ib[:hb]]])
    y_train = np.r_[np.zeros(ha, dtype=bool), np.ones(hb, dtype=bool)]
    x_test = np.concatenate([a[ia[ha:]], b[ib[hb:]]])
    positive = np.r_[np.zeros(a.shape[0] - ha, dtype=bool), np.ones(b.shape[0] - hb, dtype=bool)]
    mean, scale, w = fit_logistic(x_train, y_train)
    scores = ((x_test - mean) / scale) @ w[:-1]
    auc, p = roc_auc(scores.astype(np.float64), positive)
    return DriftTest("classifier", auc, p, threshold, auc > threshold and p < alpha, {
        "model": "logistic regression", "alpha": alpha, "rows_train": [ha, hb],
        "rows_test": [a.shape[0] - ha, b.shape[0] - hb]})
