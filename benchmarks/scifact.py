"""Retrieval quality on SciFact (BEIR train split): vector, BM25 and hybrid search, nDCG@10 and recall@100.

    python -m benchmarks.scifact [--embedder minilm|hash] [--data DIR] [--lake DIR] [--json out.json]

The corpus (`title + ". " + text` of 5,183 abstracts) is built once in a lake under a cache directory
(default `~/.cache/lakehouse-bench/scifact-<embedder>`) and reused on later runs; embedding it with
`minilm` takes several minutes on two cores. The data is read from `../shared/eval/scifact` next to
the repository (CC BY-NC: never copied into the repo).

`--tune` additionally sweeps the weight of `linear` fusion on the train queries (the default
`fusion.LINEAR_WEIGHT` was chosen that way).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

import lakehouse
from benchmarks.common import base_parser, environment, log, setup_logging, write_json
from lakehouse.engine.names import sql_string
from lakehouse.engine.vectors import hnsw
from lakehouse.engine.vectors.hnsw import default_dtype

CORPUS = "scifact"
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "scifact"
METHODS = ("vector", "text", "hybrid-rrf", "hybrid-linear")
DEPTH = 100  # hits fetched per query: recall@100 needs 100


# -- data ------------------------------------------------------------------------------------
def load_queries(data: Path) -> dict[str, str]:
    out = {}
    with open(data / "queries_train.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                out[str(q["_id"])] = q["text"]
    return out


def load_qrels(data: Path, split: str = "train") -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(data / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (i == 0 and not parts[2].strip().lstrip("-").isdigit()):
                continue  # header
            qid, did, score = parts[0], parts[1], int(parts[2])
            if score > 0:
                qrels.setdefault(qid, {})[did] = score
    return qrels


# -- metrics ---------------------------------------------------------------------------------
def ndcg_at(ranked: Sequence[str], rels: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains and the log2(rank + 1) discount (as in BEIR / pytrec_eval)."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rels.values(), reverse=True)[:k]))
    return dcg / ideal if ideal > 0 else 0.0


def recall_at(ranked: Sequence[str], rels: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(rels)) / len(rels) if rels else 0.0


def evaluate(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    qids = [q for q in qrels if q in run]
    return {
        "ndcg@10": sum(ndcg_at(run[q], qrels[q], 10) for q in qids) / max(len(qids), 1),
        "recall@100": sum(recall_at(run[q], qrels[q], 100) for q in qids) / max(len(qids), 1),
        "queries": len(qids),
    }


# -- the lake --------------------------------------------------------------------------------
def open_lake(lake_dir: Path, data: Path, embedder: str) -> lakehouse.Lake:
    """The cached lake with the `scifact` corpus, built (and embedded) only if it is not there yet."""
    lake = lakehouse.open(lake_dir, embedder=embedder)
    names = {c["name"]: c for c in lake.corpora()}
    found = names.get(CORPUS)
    if (found and found["rows"] > 0 and found["dtype"] == default_dtype("cos")
            and found["params"] == hnsw.DEFAULT_PARAMS):
        log.info("reusing corpus %s in %s (%d rows)", CORPUS, lake_dir, found["rows"])
        return lake
    # a corpus built with another index type or graph parameters is rebuilt: the embedding cache in the lake
    # makes that cheap
    log.info("building corpus %s in %s with embedder %s (slow the first time)", CORPUS, lake_dir, embedder)
    t0 = time.perf_counter()
    sql = (f"SELECT _id::VARCHAR AS id, title, text FROM read_json({sql_string(str(data / 'corpus.jsonl'))}, "
           "format = 'newline_delimited', columns = {_id: 'VARCHAR', title: 'VARCHAR', text: 'VARCHAR'})")
    lake.vectors.create_corpus(CORPUS, sql=sql, id="id", text=["title", "text"], embedder=embedder,
                               replace=CORPUS in names, progress=True)
    log.info("built corpus in %.1f s", time.perf_counter() - t0)
    return lake


# -- runs ------------------------------------------------------------------------------------
def run_method(name: str, fn: Callable[[str], list[Any]],
               queries: dict[str, str]) -> tuple[dict[str, list[str]], float]:
    run: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for qid, text in tqdm(queries.items(), desc=name, unit="q", leave=False):
        run[qid] = [h.id for h in fn(text)]
    return run, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m benchmarks.scifact", "SciFact train: nDCG@10 / recall@100 of vector, "
                                                         "BM25 and hybrid search")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SciFact folder (BEIR layout)")
    parser.add_argument("--embedder", default="minilm", help="embedder spec (minilm; hash for a quick run)")
    parser.add_argument("--lake", type=Path, default=None,
                        help="lake directory (default ~/.cache/lakehouse-bench/scifact-<embedder>)")
    parser.add_argument("--build-only", action="store_true", help="build the cached corpus and stop")
    parser.add_argument("--limit", type=int, default=None, help="only the first N judged queries")
    parser.add_argument("--tune", action="store_true", help="also sweep the linear fusion weight")
    args = parser.parse_args(list(argv) if argv is not None else None)
    setup_logging(args.verbose)
    data = args.data.expanduser().resolve()
    if not (data / "corpus.jsonl").exists():
        parser.error(f"no SciFact data at {data} (expected corpus.jsonl, queries_train.jsonl, qrels/train.tsv)")
    safe = args.embedder.replace("/", "_").replace(":", "-")
    lake_dir = (args.lake or Path("~/.cache/lakehouse-bench") / f"scifact-{safe}").expanduser()

    lake = open_lake(lake_dir, data, args.embedder)
    try:
        if args.build_only:
            return 0
        from lakehouse.engine.vectors import fusion, text_index

        qrels = load_qrels(data)
        queries = {q: t for q, t in load_queries(data).items() if q in qrels}
        if args.limit:
            queries = dict(list(queries.items())[: args.limit])
        eng = lake.vectors
        # warm up: load the HNSW index and build the BM25 sidecar outside the timings
        eng.search(CORPUS, "warm up", 1)
        text_index.text_search(eng, CORPUS, "warm up", 1)
        # the query embeddings, once, batched (and cached in the lake): timings below exclude embedding
        qids = list(queries)
        qvecs = dict(zip(qids, eng.embed([queries[q] for q in qids], eng.state(CORPUS).meta["embedder"],
                                          progress=True), strict=True))
        text_of = {t: q for q, t in queries.items()}

        def vec_of(text: str) -> Any:
            return qvecs[text_of[text]]

        fns: dict[str, Callable[[str], list[Any]]] = {
            "vector": lambda q: eng.search(CORPUS, vec_of(q), DEPTH),
            "text": lambda q: text_index.text_search(eng, CORPUS, q, DEPTH),
            "hybrid-rrf": lambda q: fusion.hybrid_search(eng, CORPUS, q, DEPTH, fusion="rrf", vector=vec_of(q)),
            "hybrid-linear": lambda q: fusion.hybrid_search(eng, CORPUS, q, DEPTH, fusion="linear",
                                                            vector=vec_of(q)),
        }
        results: dict[str, dict[str, float]] = {}
        for name, fn in fns.items():
            run, secs = run_method(name, fn, queries)
            results[name] = {**evaluate(run, qrels), "seconds": secs, "ms_per_query": 1e3 * secs / len(queries)}

        tuning = tune_linear(eng, queries, qrels, vec_of) if args.tune else None

        table = Table(title=f"SciFact train ({len(queries)} queries, {lake.vectors.state(CORPUS).size} docs, "
                            f"embedder {args.embedder}; ms/query excludes query embedding)", title_justify="left")
        for col in ("method", "nDCG@10", "recall@100", "ms/query"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for name, r in results.items():
            table.add_row(name, f"{r['ndcg@10']:.4f}", f"{r['recall@100']:.4f}", f"{r['ms_per_query']:.1f}")
        console = Console()
        if not console.is_terminal:
            console = Console(width=120)
        console.print(table)
        if tuning:
            console.print("linear weight sweep (vector weight: nDCG@10 / recall@100): " + ", ".join(
                f"{w:.2f}: {m['ndcg@10']:.4f}/{m['recall@100']:.4f}" for w, m in tuning.items()))
        if args.json:
            write_json(args.json, {
                "benchmark": "scifact", "split": "train", "embedder": args.embedder, "lake": str(lake_dir),
                "queries": len(queries), "results": results,
                "linear_weight": fusion.LINEAR_WEIGHT, "rrf_k": fusion.RRF_K,
                "tuning": {str(w): m for w, m in tuning.items()} if tuning else None,
                "environment": environment(),
            }, default_name="scifact.json")
    finally:
        lake.close()
    return 0


def tune_linear(eng: Any, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                vec_of: Callable[[str], Any]) -> dict[float, dict[str, float]]:
    """nDCG@10 / recall@100 of `linear` fusion for vector weights 0.0..1.0 (lists fetched once per query)."""
    from lakehouse.engine.vectors import fusion, text_index

    depth = max(fusion.default_depth(DEPTH), DEPTH)
    lists = []
    for qid, text in tqdm(queries.items(), desc="tune", unit="q", leave=False):
        lists.append((qid, eng.search(CORPUS, vec_of(text), depth), text_index.text_search(eng, CORPUS, text, depth)))
    out = {}
    for w in [i / 20 for i in range(21)]:
        run = {qid: [h.id for h in fusion.fuse_linear(v, t, DEPTH, weight=w)] for qid, v, t in lists}
        out[w] = evaluate(run, qrels)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
