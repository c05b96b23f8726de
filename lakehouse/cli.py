"""`lakehouse` command line: demo, ingest, sql, datasets, compact, serve."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse")


def _root_arg(p: argparse.ArgumentParser, default: str = "./lake") -> None:
    p.add_argument("--root", default=os.environ.get("LH_ROOT", default),
                   help="lake folder (default: $LH_ROOT or %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description="DuckDB as a lakehouse.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate a staffing data set, ingest it, ask it questions")
    _root_arg(p, "./demo-lake")
    p.add_argument("--rows", type=int, default=500_000, help="workers to generate (default %(default)s)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--corpus-rows", type=int, default=2_000, help="workers embedded for vector search")

    p = sub.add_parser("ingest", help="load a CSV/TSV/JSON/NDJSON/Parquet file or glob into a dataset")
    _root_arg(p)
    p.add_argument("path")
    p.add_argument("--dataset", required=True)
    p.add_argument("--mode", default="create", choices=["create", "append", "replace", "delta"])
    p.add_argument("--key", default=None, help="key column (mode delta)")
    p.add_argument("--format", default="auto", choices=["auto", "csv", "tsv", "json", "ndjson", "parquet"])

    p = sub.add_parser("sql", help="run a read-only query")
    _root_arg(p)
    p.add_argument("query")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--max-rows", type=int, default=None)

    p = sub.add_parser("datasets", help="list datasets")
    _root_arg(p)

    p = sub.add_parser("compact", help="fold a merge-on-read dataset's deltas into its base")
    _root_arg(p)
    p.add_argument("dataset")

    p = sub.add_parser("corpus", help="build or list vector corpora")
    csub = p.add_subparsers(dest="corpus_command", required=True)
    b = csub.add_parser("build", help="build a corpus from a folder of docs (Markdown) or code (Python)")
    _root_arg(b)
    b.add_argument("name")
    b.add_argument("--from", dest="source", required=True, help="folder to read")
    b.add_argument("--kind", required=True, choices=["docs", "code"])
    b.add_argument("--max-chars", type=int, default=None, help="chunk size cap")
    b.add_argument("--embedder", default=None)
    b.add_argument("--replace", action="store_true", help="rebuild an existing corpus")
    ls = csub.add_parser("list", help="list corpora")
    _root_arg(ls)

    p = sub.add_parser("serve", help="serve the HTTP API and web UI (waitress)")
    _root_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3100)
    p.add_argument("--threads", type=int, default=8)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except LakehouseError as exc:
        # One line: DuckDB's caret diagrams start after a blank line.
        first = " ".join(exc.message.split("\n\n", 1)[0].split())
        print(f"error: {first}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    import lakehouse

    if args.command == "demo":
        from lakehouse.engine.demo import run_demo

        run_demo(args.root, rows=args.rows, seed=args.seed, corpus_rows=args.corpus_rows)
        return 0
    with lakehouse.open(args.root) as lake:
        if args.command == "ingest":
            res = lake.ingest(args.path, args.dataset, mode=args.mode, key=args.key, format=args.format, origin="cli")
            state = "skipped (identical content already ingested)" if res.skipped else f"{res.rows} rows"
            print(f"{res.dataset}: {state}, snapshot {res.snapshot_id}, sha256 {res.content_sha256[:12]}")
        elif args.command == "sql":
            res = lake.query(args.query, max_rows=args.max_rows, origin="cli")
            _print_result([c["name"] for c in res.columns], res.rows, args.format)
            if res.truncated:
                print(f"(truncated at {res.row_count} rows)", file=sys.stderr)
        elif args.command == "datasets":
            rows = [[d["name"], d["kind"], d["key"] or "", d["rows"], d["ingests"]] for d in lake.datasets()]
            _print_result(["name", "kind", "key", "rows", "ingests"], rows, "table")
        elif args.command == "compact":
            out = lake.compact(args.dataset)
            print(f"{out['dataset']}: folded {out['folded']} delta rows")
        elif args.command == "corpus" and args.corpus_command == "build":
            from lakehouse.engine.matrix.builders import build_corpus

            info = build_corpus(lake, args.name, args.source, args.kind, max_chars=args.max_chars,
                                embedder=args.embedder, replace=args.replace)
            print(f"{info['name']}: {info['rows']} {args.kind} chunks from {info['source']['files']} files, "
                  f"generation {info['active_generation']}")
        elif args.command == "corpus":
            rows = [[c["name"], c["kind"], c["builder"], c["embedder"], c["rows"], c["active_generation"]]
                    for c in lake.corpora()]
            _print_result(["name", "kind", "builder", "embedder", "rows", "generation"], rows, "table")
        elif args.command == "serve":
            from lakehouse.http.serve import serve

            serve(lake, host=args.host, port=args.port, threads=args.threads)
    return 0


def _print_result(columns: list[str], rows: list[list[Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=1))
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows(rows)
    else:
        from rich.console import Console

        from lakehouse.engine.display import rows_table

        Console().print(rows_table(columns, rows))
