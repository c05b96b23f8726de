"""`python -m benchmarks.matrix`: add throughput across corpora, and matrix_search latency.

1. Adds: the same number of rows added in batches to ONE corpus, then to FOUR corpora from four
   threads at once (no shared corpus lock: seed gate G3.4.D; the lake commit itself is one writer at a
   time per process). Speed-up = 4-corpus rows/s over 1-corpus rows/s; target >= 1.6x on 2 cores.
2. matrix_search over 3 and 6 corpora of `--rows` rows each (hash embedder): p50 target < 15 ms with
   the relevance filter on. Peer: the same corpora searched one by one with Lake.vector_search and
   merged in Python (what a user would write without the matrix layer), compared with matrix_search
   with the relevance filter off (the same work).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import lakehouse
from benchmarks.common import base_parser, environment, p50, positive_int, setup_logging, temp_dir, write_json

log = logging.getLogger("benchmarks.matrix")
DIM = 384
ADD_SPEEDUP_TARGET = 1.6
SEARCH_P50_TARGET_MS = 15.0


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, DIM))
    vecs = centres[rng.integers(0, 100, n)] + 0.6 * rng.normal(size=(n, DIM))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def _empty_corpus(lake: lakehouse.Lake, name: str) -> None:
    lake.create_corpus(name, sql="SELECT 0 AS id, 'seed' AS text")


def _add_batches(lake: lakehouse.Lake, name: str, vectors: np.ndarray, batch: int, offset: int) -> int:
    for start in range(0, len(vectors), batch):
        chunk = vectors[start:start + batch]
        rows = [{"id": offset + start + i, "text": f"row {offset + start + i}", "metadata": {"b": (start + i) % 10}}
                for i in range(len(chunk))]
        lake.add_to_corpus(name, rows, embeddings=chunk)
    return len(vectors)


def bench_adds(lake: lakehouse.Lake, rows: int, batch: int) -> dict[str, float]:
    data = clustered(rows * 4, seed=1)
    for i in range(5):
        _empty_corpus(lake, f"add_{i}")
    t0 = time.perf_counter()
    _add_batches(lake, "add_0", data[:rows], batch, 1)
    one = rows / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        done = sum(pool.map(lambda i: _add_batches(lake, f"add_{i + 1}", data[i * rows:(i + 1) * rows], batch, 1),
                            range(4)))
    four = done / (time.perf_counter() - t0)
    return {"rows_per_s_1_corpus": one, "rows_per_s_4_corpora": four, "speedup": four / one}


def bench_search(lake: lakehouse.Lake, names: Sequence[str], queries: Sequence[str], repeat: int) -> dict[str, Any]:
    def matrix(q: str, relevance: bool) -> int:
        return len(lake.matrix_search(q, list(names), k_per_corpus=6, top=8, relevance=relevance).results)

    def by_hand(q: str) -> int:
        hits = [(h.score, name, h.id) for name in names for h in lake.vector_search(name, q, 6)]
        return len(sorted(hits, reverse=True)[:8])

    runs: dict[str, Callable[[str], int]] = {"matrix": lambda q: matrix(q, True),
                                            "matrix_plain": lambda q: matrix(q, False), "by_hand": by_hand}
    for q in queries[:3]:
        for fn in runs.values():
            fn(q)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeat):
        q = queries[i % len(queries)]
        for name, fn in runs.items():  # interleaved, so drift in the machine's load hits all three alike
            t0 = time.perf_counter()
            fn(q)
            times[name].append(time.perf_counter() - t0)
    return {"corpora": len(names), **{f"{name}_p50_ms": p50(t) * 1e3 for name, t in times.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m benchmarks.matrix", __doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=50_000, help="rows per corpus for search (50000)")
    parser.add_argument("--add-rows", type=positive_int, default=20_000, help="rows per corpus for adds (20000)")
    parser.add_argument("--batch", type=positive_int, default=2_000, help="rows per add call (2000)")
    parser.add_argument("--repeat", type=positive_int, default=200, help="searches timed (200)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    words = ["forklift", "operator", "welder", "nurse", "driver", "chef", "cleaner", "electrician", "painter", "roofer", "clerk"]
    rng = np.random.default_rng(5)
    queries = [" ".join(rng.choice(words, 3)) for _ in range(50)]
    out: dict[str, Any] = {"environment": environment(), "args": vars(args)}
    with temp_dir(keep=args.keep) as tmp, lakehouse.open(tmp / "lake", embedder="hash") as lake:
        log.info("adds: %d rows in batches of %d, 1 corpus then 4 corpora in parallel", args.add_rows, args.batch)
        out["adds"] = bench_adds(lake, args.add_rows, args.batch)
        names = [f"c{i}" for i in range(6)]
        for i, name in enumerate(names):
            log.info("building corpus %s (%d rows)", name, args.rows)
            _empty_corpus(lake, name)
            _add_batches(lake, name, clustered(args.rows, seed=10 + i), args.rows, 1)  # one bulk add: one build
        out["search"] = [bench_search(lake, names[:n], queries, args.repeat) for n in (3, 6)]
    table = Table(title="matrix benchmark", title_justify="left")
    for col in ("measurement", "lakehouse", "peer", "target", "result"):
        table.add_column(col)
    a = out["adds"]
    passed = [a["speedup"] >= ADD_SPEEDUP_TARGET]
    table.add_row("add throughput, 4 corpora in parallel vs 1", f"{a['rows_per_s_4_corpora']:.0f} rows/s",
                  f"1 corpus: {a['rows_per_s_1_corpus']:.0f} rows/s", f">= {ADD_SPEEDUP_TARGET:g}x",
                  f"{a['speedup']:.2f}x " + ("PASS" if passed[-1] else "FAIL"))
    for s in out["search"]:
        passed.append(s["matrix_p50_ms"] < SEARCH_P50_TARGET_MS)
        table.add_row(f"matrix_search p50, {s['corpora']} corpora x {args.rows}", f"{s['matrix_p50_ms']:.2f} ms",
                      f"unfiltered {s['matrix_plain_p50_ms']:.2f} ms vs by hand {s['by_hand_p50_ms']:.2f} ms",
                      f"< {SEARCH_P50_TARGET_MS:g} ms",
                      "PASS" if passed[-1] else "FAIL")
    Console(width=160).print(table)
    out["all_passed"] = all(passed)
    if args.json:
        write_json(args.json, out, "matrix.json")
    return 1 if args.check and not out["all_passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
