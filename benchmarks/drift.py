"""Embedding drift on 100K x 384 vs 100K x 384: Lakehouse vs the same statistics in plain numpy/scipy/sklearn.

    python -m benchmarks drift [--n 100000] [--dim 384] [--shift 0.2] [--repeat 3] [--check] [--json PATH]

Data: seeded clustered unit vectors (gaussian noise around 200 random centres); in the current sample a
`--shift` share of rows comes from 20 new centres (0 = the same distribution).

Lakehouse: `embedding_drift` with each test alone (`tests=(name,)`, validation included) and with all four
(the total), warm: one untimed call first compiles the numba kernels or loads them from numba's cache
(its time is reported as `first_call_s`). Target: the total < 2 s (`--check` exits 1 when missed).

Peer, with the same subsample sizes (its own seeded rows): `scipy.stats.ks_2samp(method="asymp")` per
dimension + `scipy.stats.false_discovery_control`; numpy PCA (np.cov + eigh), np.quantile and np.histogram
for PSI; the numpy RBF kernel (float64 Gram) and one matrix-vector product per permutation for MMD;
sklearn `LogisticRegression` + `roc_auc_score` + scipy's Mann-Whitney p-value for the classifier (skipped
when sklearn is missing). Ratios (Lakehouse / peer) are reported, not judged; the peer's verdicts are
printed beside ours and should agree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import (
    Comparison,
    base_parser,
    environment,
    fmt_seconds,
    log,
    median,
    positive_int,
    print_table,
    repeat_timed,
    setup_logging,
    time_call,
    write_json,
)
from lakehouse.engine.drift import DEFAULT_THRESHOLDS, TESTS, embedding_drift

TOTAL_TARGET_S = 2.0
ALPHA = 0.05
PSI_PROJECTIONS = 5


# -- data ----------------------------------------------------------------------------------
def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_samples(n: int, dim: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference, current): clustered unit vectors; `shift` of the current rows come from new centres."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((200, dim)).astype(np.float32))
    new = unit_rows(rng.standard_normal((20, dim)).astype(np.float32))

    def draw(rows: int, cs: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(0.8 / math.sqrt(dim))
        return unit_rows(cs[rng.integers(0, len(cs), rows)] + noise)

    reference, current = draw(n, centres), draw(n, centres)
    moved = rng.choice(n, int(round(shift * n)), replace=False)
    current[moved] = draw(len(moved), new)
    return reference, current


# -- the peer: the same statistics, written plainly ------------------------------------------
def _rows(x: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= rows else x[rng.choice(len(x), rows, replace=False)]


def peer_ks(a: np.ndarray, b: np.ndarray, args: Any) -> dict[str, Any]:
    from scipy import stats

    rng = np.random.default_rng(args.seed)
    x, y = _rows(a, args.max_rows, rng), _rows(b, args.max_rows, rng)
    p = np.array([stats.ks_2samp(x[:, j], y[:, j], method="asymp").pvalue for j in range(a.shape[1])])
    adjusted = stats.false_discovery_control(p, method="bh")
    share = float(np.mean(adjusted <= ALPHA))
    return {"statistic": share, "p_value": float(adjusted.min()), "drifted": share > DEFAULT_THRESHOLDS["ks"]}


def peer_psi(a: np.ndarray, b: np.ndarray, args: Any) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    x, y = _rows(a, args.max_rows, rng), _rows(b, args.max_rows, rng)
    _, vecs = np.linalg.eigh(np.cov(_rows(x, 5_000, rng), rowvar=False))
    top = vecs[:, ::-1][:, :PSI_PROJECTIONS]
    bins = min(10, max(2, min(len(x), len(y)) // 50))
    values = []
    for px, py in zip((x @ top).T, (y @ top).T):
        edges = np.r_[-np.inf, np.quantile(px, np.linspace(0, 1, bins + 1)[1:-1]), np.inf]
        p = np.maximum(np.histogram(px, edges)[0] / len(px), 1e-4)
        q = np.maximum(np.histogram(py, edges)[0] / len(py), 1e-4)
        values.append(float(np.sum((q - p) * np.log(q / p))))
    return {"statistic": max(values), "p_value": None, "drifted": max(values) > DEFAULT_THRESHOLDS["psi"]}


def peer_mmd(a: np.ndarray, b: np.ndarray, args: Any) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    z = np.concatenate([_rows(a, args.mmd_rows, rng), _rows(b, args.mmd_rows, rng)]).astype(np.float64)
    n = min(len(a), args.mmd_rows)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0)
    pick = rng.choice(len(z), min(len(z), 1_000), replace=False)
    sigma2 = np.median(d2[np.ix_(pick, pick)][np.triu_indices(len(pick), 1)])
    kernel = np.exp(-d2 / (2 * sigma2))
    total = kernel.sum()

    def mmd2(in_x: np.ndarray) -> float:
        m = len(z) - n
        u = kernel @ in_x
        s_xx = in_x @ u
        s_xy = u.sum() - s_xx
        return (s_xx - n) / (n * (n - 1)) + (total - s_xx - 2 * s_xy - m) / (m * (m - 1)) - 2 * s_xy / (n * m)

    observed = mmd2(np.r_[np.ones(n), np.zeros(len(z) - n)])
    null = []
    for _ in range(args.permutations):
        in_x = np.zeros(len(z))
        in_x[rng.permutation(len(z))[:n]] = 1
        null.append(mmd2(in_x))
    p = (1 + sum(v >= observed for v in null)) / (args.permutations + 1)
    return {"statistic": float(observed), "p_value": p, "drifted": p < DEFAULT_THRESHOLDS["mmd"]}


def peer_classifier(a: np.ndarray, b: np.ndarray, args: Any) -> dict[str, Any]:
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(args.seed)
    x, y = _rows(a, args.classifier_rows, rng), _rows(b, args.classifier_rows, rng)
    data, labels = np.concatenate([x, y]), np.r_[np.zeros(len(x)), np.ones(len(y))]
    x_train, x_test, y_train, y_test = train_test_split(data, labels, test_size=0.5, stratify=labels,
                                                        random_state=args.seed)
    model = LogisticRegression(max_iter=1_000, class_weight="balanced").fit(x_train, y_train)
    scores = model.decision_function(x_test)
    auc = float(roc_auc_score(y_test, scores))
    p = float(stats.mannwhitneyu(scores[y_test == 1], scores[y_test == 0], alternative="greater").pvalue)
    return {"statistic": auc, "p_value": p, "drifted": auc > DEFAULT_THRESHOLDS["classifier"] and p < ALPHA}


PEERS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, Any], dict[str, Any]]]] = {
    "ks": ("scipy ks_2samp per dim", peer_ks), "psi": ("numpy PCA + histogram", peer_psi),
    "mmd": ("numpy RBF + permutations", peer_mmd), "classifier": ("sklearn LogisticRegression", peer_classifier),
}


def preload_peers() -> None:
    """Import the peers' libraries before timing them (scipy.stats alone takes ~0.5 s to import)."""
    for module in ("scipy.stats", "sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection"):
        try:
            __import__(module)
        except ImportError:
            continue  # the peer that needs it reports it unavailable


# -- the run -------------------------------------------------------------------------------
def run(args: Any) -> tuple[dict[str, Any], list[Comparison]]:
    """Time ours and the peer on the same data; the JSON payload and the comparisons."""
    log.info("data: 2 x %d x %d, shift %.2f", args.n, args.dim, args.shift)
    a, b = make_samples(args.n, args.dim, args.shift, args.seed)
    options = {"seed": args.seed, "max_rows": args.max_rows, "mmd_rows": args.mmd_rows,
               "classifier_rows": args.classifier_rows, "permutations": args.permutations}
    first_s, report = time_call(lambda: embedding_drift(a, b, **options))
    log.info("first call (numba compile or cache load) %.2f s; fired: %s", first_s, report.fired)
    preload_peers()
    comparisons: dict[str, Comparison] = {}
    peer_results: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    peer_totals = np.zeros(args.peer_repeat)
    for name in TESTS:
        ours = repeat_timed(lambda name=name: embedding_drift(a, b, tests=(name,), **options), args.repeat)
        label, fn = PEERS[name]
        try:
            samples = []
            for _ in range(args.peer_repeat):
                seconds, peer_results[name] = time_call(lambda fn=fn: fn(a, b, args))
                samples.append(seconds)
        except ImportError as exc:
            unavailable[name] = str(exc)
            log.warning("peer %s unavailable: %s", label, exc)
            continue
        peer_totals += samples
        comparisons[name] = Comparison(name, "lakehouse", ours, label, samples, None)
        log.info("%s: ours %s, peer %s", name, fmt_seconds(median(ours)), fmt_seconds(median(samples)))
    total = repeat_timed(lambda: embedding_drift(a, b, **options), args.repeat)
    if not unavailable:
        comparisons["total"] = Comparison("total", "lakehouse", total, "sum of the peers", list(peer_totals), None)
    passed = median(total) < TOTAL_TARGET_S
    return {
        "benchmark": "drift", "environment": environment(), "loadavg": os.getloadavg(),
        "params": {k: v for k, v in vars(args).items() if k not in ("json", "check", "keep", "verbose")},
        "first_call_s": first_s,
        "comparisons": {k: c.to_dict() for k, c in comparisons.items()},
        "checks": [{"metric": "total, warm (median)", "seconds": median(total), "samples": total,
                    "target_s": TOTAL_TARGET_S, "passed": passed}],
        "verdicts": {"lakehouse": report.to_dict(), "peer": peer_results},
        "unavailable": unavailable, "all_passed": passed,
    }, list(comparisons.values())


def print_report(res: dict[str, Any], comparisons: Sequence[Comparison]) -> None:
    p = res["params"]
    print_table(f"Embedding drift, {p['n']:,} x {p['dim']} vs {p['n']:,} x {p['dim']} (warm)", comparisons)
    console = Console(width=160)
    check = res["checks"][0]
    console.print(f"total {fmt_seconds(check['seconds'])} (target < {check['target_s']:g} s): "
                  + ("[green]PASS[/green]" if check["passed"] else "[bold red]FAIL[/bold red]")
                  + f"; first call {fmt_seconds(res['first_call_s'])}")
    table = Table(title="Verdicts (statistic / p-value / fired)", title_justify="left")
    for col in ("test", "threshold", "lakehouse", "peer"):
        table.add_column(col)

    def cell(r: dict[str, Any] | None) -> str:
        if r is None:
            return "-"
        pv = "-" if r["p_value"] is None else f"{r['p_value']:.3g}"
        return f"{r['statistic']:.4g} / {pv} / {'yes' if r['drifted'] else 'no'}"

    for t in res["verdicts"]["lakehouse"]["tests"]:
        table.add_row(t["name"], f"{t['threshold']:g}", cell(t), cell(res["verdicts"]["peer"].get(t["name"])))
    console.print(table)
    for name, why in res["unavailable"].items():
        console.print(f"[yellow]peer unavailable[/yellow] {name}: {why}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m benchmarks drift", __doc__.splitlines()[0])
    parser.add_argument("--n", type=positive_int, default=100_000, help="rows per sample (100000)")
    parser.add_argument("--dim", type=positive_int, default=384)
    parser.add_argument("--shift", type=float, default=0.2, help="share of current rows from new centres (0.2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed runs of ours (3)")
    parser.add_argument("--peer-repeat", type=positive_int, default=1, help="timed runs of the peer (1)")
    parser.add_argument("--max-rows", type=positive_int, default=20_000, help="KS/PSI rows per side (20000)")
    parser.add_argument("--mmd-rows", type=positive_int, default=2_000, help="MMD rows per side (2000)")
    parser.add_argument("--classifier-rows", type=positive_int, default=5_000, help="classifier rows per side (5000)")
    parser.add_argument("--permutations", type=positive_int, default=200, help="MMD permutations (200)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    res, comparisons = run(args)
    print_report(res, comparisons)
    if args.json:
        write_json(args.json, res, "drift.json")
    return 1 if args.check and not res["all_passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
