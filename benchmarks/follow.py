"""A followed corpus: appending 1 % new rows to the 500K-worker demo dataset, with a corpus that follows it,
against embedding just those rows (target <= 1.2x).

    python -m benchmarks.follow [--rows 500000] [--share 0.01] [--embedder minilm] [--json out.json] [--check]

The corpus over the whole dataset is set up without embedding 500K texts with the model: the embedding cache is
filled first (random unit vectors under the embedder's id), so `create_corpus` finds every text there, as a lake
that built its corpus earlier would. What is timed is the append as a user runs it — `Lake.ingest(..., mode=
"append")`, which writes the rows and syncs the corpus in the same operation (change feed, re-read, embed,
write, index) — against the embedder alone on the same new texts (its own cache bypassed).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

import lakehouse
from benchmarks.common import Comparison, base_parser, environment, print_table, setup_logging, temp_dir, write_json
from lakehouse.engine import demo_data
from lakehouse.engine.vectors import store

log = logging.getLogger("benchmarks.follow")
TARGET = 1.2
TEXT = ["role", "city", "state", "availability", "tag"]  # `tag` names the worker: every text is its own


def _tagged(workers: pa.Table, first_id: int) -> pa.Table:
    ids = np.arange(first_id, first_id + workers.num_rows, dtype=np.int64)
    return workers.set_column(0, "id", pa.array(ids)).append_column(
        "tag", pa.array([f"worker {i}" for i in ids])).select(["id", *TEXT])


def _texts(tbl: pa.Table) -> list[str]:
    cols = [tbl.column(c).to_pylist() for c in TEXT]
    return [". ".join(str(v) for v in vals if v not in (None, "")) for vals in zip(*cols, strict=True)]


def _prefill_cache(lake: lakehouse.Lake, texts: list[str], embedder: str) -> None:
    """Random unit vectors for `texts` in the lake's embedding cache, as if embedded before."""
    emb = lake.vectors.embedder(embedder)
    shas = sorted({hashlib.sha256(t.encode()).hexdigest() for t in texts})
    vecs = np.random.default_rng(0).normal(size=(len(shas), emb.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with lake.ctx.fresh_cursor() as cur:
        cur.register("lh_fill", pa.table({"sha256": shas, "embedding": store.list_array(vecs)}))
        lake.ctx.transaction(cur, lambda c: c.execute(
            "INSERT INTO lake.lh.embedding_cache SELECT ?, sha256, embedding FROM lh_fill", [emb.id]))
        cur.unregister("lh_fill")


def run(rows: int, share: float, embedder: str, keep: bool = False, console: Console | None = None) -> dict[str, Any]:
    n_new = max(1, int(rows * share))
    workers = _tagged(demo_data.generate(rows, 7)["workers"], 1)
    fresh = _tagged(demo_data.generate(n_new, 99)["workers"], rows + 1)
    with temp_dir("lakehouse-bench-follow-", keep=keep) as work, lakehouse.open(work / "lake", embedder=embedder) as lake:
        buf = io.BytesIO()
        pq.write_table(workers, buf)
        lake.ingest(buf.getvalue(), "workers", filename="workers.parquet")
        log.info("cache prefilled for %d texts; building the followed corpus over %d rows", rows, rows)
        _prefill_cache(lake, _texts(workers), embedder)
        t0 = time.perf_counter()
        lake.create_corpus("w", dataset="workers", text=TEXT, metadata=["state"], embedder=embedder)
        setup_s = time.perf_counter() - t0
        new_texts = _texts(fresh)
        emb = lake.vectors.embedder(embedder)
        emb.embed(new_texts[:8])  # the model loaded before either side is timed
        t0 = time.perf_counter()
        emb.embed(new_texts)
        embed_s = time.perf_counter() - t0
        buf = io.BytesIO()
        pq.write_table(fresh, buf)
        t0 = time.perf_counter()
        res = lake.ingest(buf.getvalue(), "workers", mode="append", filename="new_workers.parquet")
        append_s = time.perf_counter() - t0
        synced = res.followers["w"]
        if synced.get("added") != n_new:
            raise RuntimeError(f"the corpus followed {synced}, expected {n_new} rows added")
        found = lake.vector_search("w", new_texts[0], 1, ids=[int(fresh.column("id")[0].as_py())])
        if not found or found[0].score < 0.999:
            raise RuntimeError("a new row is not in the corpus with its own text's embedding")
    cmp = Comparison(f"append {n_new:,} rows ({share:.0%}) to {rows:,}, corpus following", "Lake.ingest + sync",
                     [append_s], f"embed the {n_new:,} new texts ({embedder})", [embed_s], TARGET, "median")
    print_table("Followed corpus", [cmp], console)
    return {"benchmark": "follow", "environment": environment(),
            "params": {"rows": rows, "new_rows": n_new, "embedder": embedder},
            "setup_s": round(setup_s, 3), "comparisons": {"append": cmp.to_dict()},
            "all_passed": cmp.passed is not False}


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m benchmarks.follow", __doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="dataset rows (default 500000)")
    parser.add_argument("--share", type=float, default=0.01, help="share of new rows appended (default 0.01)")
    parser.add_argument("--embedder", default="minilm", help="the corpus's embedder (default minilm)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    results = run(args.rows, args.share, args.embedder, keep=args.keep)
    if args.json:
        write_json(args.json, results, "follow.json")
    return 1 if args.check and not results["all_passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
