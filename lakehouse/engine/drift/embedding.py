"""Embedding drift: does the current sample `b` come from the same distribution as the reference `a`?

A measurement, not learning: four tests over two float32 matrices (rows x dims), each with a threshold,
and a verdict. Every random choice is drawn from `seed`, so the same inputs give the same report.

    report = embedding_drift(reference, current, seed=0)
    report.drifted, report.fired, report.to_dict()

The tests, our default threshold, and what Evidently's `EmbeddingsDriftMetric` defaults to (read in
evidently `src/evidently/metrics/data_drift/embedding_drift_methods.py` and its docs page
`docs/book/customization/embeddings-drift-parameters.md`: `model` threshold=0.55, `ratio` component_stattest=
"wasserstein", component_stattest_threshold=0.1, threshold=0.2, `distance` euclidean threshold=0.2,
`mmd` threshold=0.015 on MMD^2; a bootstrap replaces the thresholds by default for <= 1000 objects):

1. "ks": two-sample Kolmogorov-Smirnov per dimension, Benjamini-Hochberg FDR at `alpha` over the
   dimensions (chosen over Bonferroni: it keeps power with 384 correlated dimensions and is valid under
   their positive dependence); p-values from Kolmogorov's limiting distribution with Stephens' correction
   (scipy's method="asymp" uses the exact one-sample law at n m / (n + m); they agree within ~4 %
   for p > 1e-6); statistic = share of drifted dimensions; fires when > 0.2. Evidently's
   `ratio` counts components whose (normed) Wasserstein distance >= 0.1 and fires when the share > 0.2.
2. "psi": PSI of projections on the top 5 principal directions of `a` (chosen over random directions:
   a random direction in 384-d averages the dimensions and hides most shifts), 10 reference-quantile
   bins (fewer for samples under 500 rows); statistic = the largest PSI; fires when > 0.2 (0.1-0.2 is
   reported as "moderate"). Evidently has no PSI method for embeddings (its per-column `psi` stattest
   uses 0.1).
3. "mmd": unbiased MMD^2, RBF kernel exp(-d^2 / (2 sigma^2)), sigma = median pairwise distance, p-value
   from `permutations` seeded relabellings; fires when p < 0.05. Evidently's `mmd` fires when MMD^2 >
   0.015 with kernel exp(-d^2 / sigma^2) (no permutation test).
4. "classifier": held-out ROC AUC of a logistic regression telling b from a (seeded stratified 50/50
   split); fires when AUC > 0.55 (Evidently's `model` default, an SGD logistic classifier) and the AUC
   is significant at `alpha`.

Verdict: drifted when at least `min_fired` tests fire, by default 2 (or 1 when one test is run). One
test alone fires on chance now and then (the MMD test 5 % of the time by construction, PSI on small
samples); a real shift moves several views at once. The report says which tests fired.

Large inputs are subsampled (seeded): KS and PSI use at most `max_rows` rows per side, MMD `mmd_rows`,
the classifier `classifier_rows`. Besides bounding the time (100K x 384 per side in about a second),
it keeps a test's sensitivity from growing without bound with the corpus: a window of 100K rows is
not flagged for a shift too small to matter that 20K rows would not show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from lakehouse.engine.drift import kernels, methods
from lakehouse.engine.drift.report import DriftReport
from lakehouse.errors import InvalidInput

TESTS = ("ks", "psi", "mmd", "classifier")
# Each comment: what our threshold bounds; then the default of Evidently's EmbeddingsDriftMetric method.
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType({
    "ks": 0.2,  # share of drifted dims; `ratio`: share > 0.2 of components with normed Wasserstein distance >= 0.1
    "psi": 0.2,  # largest PSI ("moderate" above 0.1); no PSI method for embeddings (per-column `psi`: 0.1)
    "mmd": 0.05,  # permutation p-value; `mmd`: MMD^2 > 0.015, kernel exp(-d^2 / sigma^2), no permutations
    "classifier": 0.55,  # held-out ROC AUC; `model`: ROC AUC > 0.55 (an SGD logistic classifier)
})
_SUBSAMPLE_STREAM = len(TESTS)  # the shared KS/PSI subsample's seed stream, after one per test


def embedding_drift(
    a: Any,
    b: Any,
    *,
    seed: int = 0,
    thresholds: Mapping[str, float] | None = None,
    tests: Iterable[str] = TESTS,
    min_fired: int | None = None,
    alpha: float = 0.05,
    max_rows: int = 20_000,
    mmd_rows: int = 2_000,
    classifier_rows: int = 5_000,
    permutations: int = 200,
    psi_bins: int = 10,
    psi_projections: int = 5,
) -> DriftReport:
    """Compare the reference embeddings `a` (n x d) with the current `b` (m x d) and report drift.

    `thresholds` overrides DEFAULT_THRESHOLDS per test name; `tests` picks which run (reported in TESTS
    order); `alpha` is the FDR level of the per-dimension KS tests and the significance the classifier's
    AUC needs. Raises InvalidInput naming the problem: fewer than 2 rows, no or mismatched dimensions,
    NaN or infinite values, unknown test names, out-of-range parameters.
    """
    x = _matrix(a, "a")
    y = _matrix(b, "b")
    if x.shape[1] != y.shape[1]:
        raise InvalidInput(f"a and b must have the same number of dimensions, got {x.shape[1]} and {y.shape[1]}")
    chosen = _tests(tests)
    limits = _thresholds(thresholds)
    need = min(2, len(chosen)) if min_fired is None else min_fired
    _check_int("min_fired", need, 1, len(chosen))
    _check_int("seed", seed, 0)
    for name, value in (("max_rows", max_rows), ("mmd_rows", mmd_rows), ("classifier_rows", classifier_rows),
                        ("psi_bins", psi_bins)):
        _check_int(name, value, 2)
    _check_int("permutations", permutations, 1)
    _check_int("psi_projections", psi_projections, 1)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must be between 0 and 1, got {alpha!r}")

    def rng(stream: int) -> np.random.Generator:  # one stream per test: a test's result does not depend on the others
        return np.random.default_rng([seed, stream])

    results = []
    if "ks" in chosen or "psi" in chosen:
        shared = rng(_SUBSAMPLE_STREAM)
        xs, ys = methods.subsample(x, max_rows, shared), methods.subsample(y, max_rows, shared)
        if "ks" in chosen:
            results.append(methods.ks_test(xs, ys, limits["ks"], alpha))
        if "psi" in chosen:
            results.append(methods.psi_test(xs, ys, limits["psi"], psi_bins, psi_projections, rng(1)))
    if "mmd" in chosen:
        r = rng(2)
        results.append(methods.mmd_test(methods.subsample(x, mmd_rows, r), methods.subsample(y, mmd_rows, r),
                                        limits["mmd"], permutations, r))
    if "classifier" in chosen:
        r = rng(3)
        results.append(methods.classifier_test(methods.subsample(x, classifier_rows, r),
                                               methods.subsample(y, classifier_rows, r),
                                               limits["classifier"], alpha, r))
    fired = sum(t.drifted for t in results)
    return DriftReport(drifted=fired >= need, tests=results, min_fired=need, n_reference=x.shape[0],
                       n_current=y.shape[0], dim=x.shape[1], seed=seed)


def _matrix(value: Any, name: str) -> np.ndarray:
    """`value` as a C-contiguous float32 matrix of at least 2 rows and 1 dimension, every value finite."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a 2-D array of numbers: {exc}") from exc
    if arr.dtype.kind not in "fiu":
        raise InvalidInput(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidInput(f"{name} must be 2-D (rows x dimensions), got shape {arr.shape}")
    rows, dims = arr.shape
    if rows < 2:
        raise InvalidInput(f"{name} has {rows} row{'' if rows == 1 else 's'}; drift needs at least 2 per sample")
    if dims < 1:
        raise InvalidInput(f"{name} has no dimensions")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: reported below
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = int(kernels.first_nonfinite(arr))
    if bad >= 0:
        count = int(np.count_nonzero(~np.isfinite(arr)))
        raise InvalidInput(f"{name} has {count} NaN or infinite value{'' if count == 1 else 's'} "
                           f"(first at row {bad // dims}, dimension {bad % dims})")
    return arr


def _tests(names: Iterable[str]) -> tuple[str, ...]:
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = sorted({str(n) for n in wanted} - set(TESTS))
    if unknown:
        raise InvalidInput(f"unknown drift test{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                           f"known: {', '.join(TESTS)}")
    if not wanted:
        raise InvalidInput(f"no drift test chosen; known: {', '.join(TESTS)}")
    return tuple(t for t in TESTS if t in wanted)


def _thresholds(overrides: Mapping[str, float] | None) -> dict[str, float]:
    limits = dict(DEFAULT_THRESHOLDS)
    for name, value in (overrides or {}).items():
        if name not in limits:
            raise InvalidInput(f"unknown drift test {name!r} in thresholds; known: {', '.join(TESTS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(
                value):
            raise InvalidInput(f"threshold of {name!r} must be a finite number, got {value!r}")
        limits[name] = float(value)
    return limits


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise InvalidInput(f"{name} must be an integer {span}, got {value!r}")
