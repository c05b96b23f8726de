"""`lakehouse` command line: every command but `demo`, `serve` and `mcp` is one operation of the catalog, run with
origin `cli` (so it is validated and recorded like the same call over HTTP or SQL)."""

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


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description="DuckDB as a lakehouse.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate a staffing data set, ingest it, ask it questions")
    _root_arg(p, "./demo-lake")
    p.add_argument("--rows", type=int, default=500_000, help="workers to generate (default %(default)s)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--corpus-rows", type=int, default=2_000, help="workers embedded for vector search")

    p = sub.add_parser("ingest", help="load a CSV/TSV/JSON/NDJSON/Parquet/PDF/.xlsx file or glob, or a PostgreSQL "
                       "table or query, into a dataset")
    _root_arg(p)
    p.add_argument("path")
    p.add_argument("--dataset", required=True)
    p.add_argument("--mode", default="create", choices=["create", "append", "replace", "delta"])
    p.add_argument("--key", default=None, help="key column (mode delta)")
    p.add_argument("--format", default="auto", choices=["auto", "csv", "tsv", "json", "ndjson", "parquet", "pdf", "xlsx"])
    p.add_argument("--table", default=None, help="PostgreSQL source (postgres://...): the table to read")
    p.add_argument("--query", default=None, help="PostgreSQL source: a SELECT to read")
    p.add_argument("--sheet", default=None, help=".xlsx: the sheet to read (default: the first)")
    p.add_argument("--corpus", default=None, help="PDF: also embed the chunks into this corpus")

    p = sub.add_parser("sql", help="run a read-only query")
    _root_arg(p)
    p.add_argument("query")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--max-rows", type=int, default=None)

    p = sub.add_parser("datasets", help="list datasets")
    _root_arg(p)
    p = sub.add_parser("dataset", help="describe a dataset (columns, rows, ingest history)")
    _root_arg(p)
    p.add_argument("name")
    p = sub.add_parser("drop", help="drop a dataset")
    _root_arg(p)
    p.add_argument("name")
    p = sub.add_parser("compact", help="fold a merge-on-read dataset's deltas into its base")
    _root_arg(p)
    p.add_argument("dataset")

    p = sub.add_parser("corpus", help="build, list and manage vector corpora")
    csub = p.add_subparsers(dest="corpus_command", required=True)
    c = csub.add_parser("create", help="build a corpus from a dataset or a read-only query")
    _root_arg(c)
    c.add_argument("name")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset")
    src.add_argument("--sql")
    c.add_argument("--id", default="id")
    c.add_argument("--text", type=_list, required=True, help="column(s) to embed, comma-separated")
    c.add_argument("--metadata", type=_list, default=[], help="columns kept as metadata, comma-separated")
    c.add_argument("--embedder", default=None)
    c.add_argument("--replace", action="store_true")
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
    for name, what in (("rebuild", "build a new index generation and swap it in"),
                       ("rollback", "re-activate an earlier index generation"), ("drop", "drop a corpus")):
        x = csub.add_parser(name, help=what)
        _root_arg(x)
        x.add_argument("name")
        if name == "rollback":
            x.add_argument("--generation", type=int, default=None)

    p = sub.add_parser("search", help="vector search of one corpus")
    _root_arg(p)
    p.add_argument("corpus")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p = sub.add_parser("matrix", help="search several corpora at once")
    _root_arg(p)
    p.add_argument("query")
    p.add_argument("--corpora", type=_list, default=None)
    p.add_argument("--mode", default=None)
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--use-playbook", action="store_true")
    p = sub.add_parser("ask", help="answer a question from retrieved rows (with citations)")
    _root_arg(p)
    p.add_argument("question")
    p.add_argument("--corpora", type=_list, default=None)
    p.add_argument("-k", type=int, default=8)
    p.add_argument("--model", default=None)

    p = sub.add_parser("ops", help="recorded operations: tail and statistics")
    osub = p.add_subparsers(dest="ops_command", required=True)
    t = osub.add_parser("tail", help="the latest recorded operations")
    _root_arg(t)
    t.add_argument("--op", default=None)
    t.add_argument("--origin", default=None)
    t.add_argument("--status", choices=["ok", "error"], default=None)
    t.add_argument("--limit", type=int, default=20)
    st = osub.add_parser("stats", help="count, errors and p50/p95/p99 per op and origin")
    _root_arg(st)
    st.add_argument("--window", default="1h", help="30s, 15m, 1h, 7d (default %(default)s)")

    p = sub.add_parser("journal", help="the lake's history: what each snapshot changed, and who")
    _root_arg(p)
    p.add_argument("--dataset", default=None)
    p.add_argument("--corpus", default=None)
    p.add_argument("--op", default=None, help="e.g. dataset.ingest")
    p.add_argument("--since-snapshot", type=int, default=None)
    p.add_argument("--limit", type=int, default=20)

    p = sub.add_parser("storage", help="buckets: move rescued files back to the primary")
    ssub = p.add_subparsers(dest="storage_command", required=True)
    d = ssub.add_parser("drain", help="move rows written to the rescue bucket back to the primary bucket")
    _root_arg(d)

    p = sub.add_parser("serve", help="serve the HTTP API and web UI (waitress)")
    _root_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3100)
    p.add_argument("--threads", type=int, default=8)

    p = sub.add_parser("mcp", help="serve the lake to an MCP client over stdio (needs lakehouse[mcp])")
    _root_arg(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from lakehouse.engine.ops import entrance

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with entrance("cli"):
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
    if args.command == "mcp":
        from lakehouse.mcp import require_sdk

        require_sdk()  # before the lake is opened (or created)
    with lakehouse.open(args.root) as lake:
        if args.command == "serve":
            from lakehouse.http.serve import serve

            serve(lake, host=args.host, port=args.port, threads=args.threads)
        elif args.command == "mcp":
            from lakehouse.mcp.stdio import serve_stdio

            serve_stdio(lake)
        elif args.command == "corpus":
            _corpus(lake, args)
        elif args.command == "ops":
            _ops(lake, args)
        elif args.command in ("journal", "storage"):
            _history(lake, args)
        else:
            _data(lake, args)
    return 0


def _data(lake: Any, args: argparse.Namespace) -> None:
    cmd = args.command
    if cmd == "ingest":
        extra = {k: getattr(args, k) for k in ("table", "query", "sheet", "corpus") if getattr(args, k) is not None}
        res = lake.ingest(args.path, args.dataset, mode=args.mode, key=args.key, format=args.format, **extra)
        state = "skipped (identical content already ingested)" if res.skipped else f"{res.rows} rows"
        print(f"{res.dataset}: {state}, snapshot {res.snapshot_id}, sha256 {res.content_sha256[:12]}")
    elif cmd == "sql":
        res = lake.query(args.query, max_rows=args.max_rows)
        _print_result([c["name"] for c in res.columns], res.rows, args.format)
        if res.truncated:
            print(f"(truncated at {res.row_count} rows)", file=sys.stderr)
    elif cmd == "datasets":
        rows = [[d["name"], d["kind"], d["key"] or "", d["rows"], d["ingests"]] for d in lake.datasets()]
        _print_result(["name", "kind", "key", "rows", "ingests"], rows, "table")
    elif cmd == "dataset":
        info = lake.dataset(args.name)
        print(f"{info['name']}: {info['rows']} rows, kind {info['kind']}")
        _print_result(["column", "type", "nullable"], [[c["name"], c["type"], c["nullable"]] for c in info["columns"]],
                      "table")
    elif cmd == "drop":
        lake.drop_dataset(args.name)
        print(f"{args.name}: dropped")
    elif cmd == "compact":
        out = lake.compact(args.dataset)
        print(f"{out['dataset']}: folded {out['folded']} delta rows")
    elif cmd == "search":
        hits = lake.vector_search(args.corpus, args.query, args.k)
        _print_result(["rank", "id", "score"], [[h.rank, h.id, round(h.score, 4)] for h in hits], "table")
    elif cmd == "matrix":
        res = lake.matrix_search(args.query, args.corpora, mode=args.mode, top=args.top, use_playbook=args.use_playbook)
        _print_result(["rank", "corpus", "id", "score", "source", "text"],
                      [[h.rank, h.corpus, h.id, round(h.score, 4), h.source, h.text[:80]] for h in res.results], "table")
    elif cmd == "ask":
        out = lake.ask(args.question, corpora=args.corpora, k=args.k, model=args.model)
        print(out["answer"])
        if out["note"]:
            print(f"({out['note']})", file=sys.stderr)


def _corpus(lake: Any, args: argparse.Namespace) -> None:
    cmd = args.corpus_command
    if cmd == "create":
        info = lake.create_corpus(args.name, dataset=args.dataset, sql=args.sql, id=args.id, text=args.text,
                                  metadata=args.metadata, embedder=args.embedder, replace=args.replace)
        print(f"{info['name']}: {info['rows']} rows, generation {info['active_generation']}")
    elif cmd == "build":
        info = lake.build_corpus(args.name, args.source, args.kind, max_chars=args.max_chars, embedder=args.embedder,
                                 replace=args.replace)
        print(f"{info['name']}: {info['rows']} {args.kind} chunks from {info['source']['files']} files, "
              f"generation {info['active_generation']}")
    elif cmd == "list":
        rows = [[c["name"], c["kind"], c["builder"], c["embedder"], c["rows"], c["active_generation"]]
                for c in lake.corpora()]
        _print_result(["name", "kind", "builder", "embedder", "rows", "generation"], rows, "table")
    elif cmd == "rebuild":
        out = lake.rebuild_index(args.name)
        print(f"{args.name}: generation {out['generation']} ({out['rows']} rows, recall@10 {out['recall_at_10']})")
    elif cmd == "rollback":
        out = lake.rollback_index(args.name, args.generation)
        print(f"{args.name}: generation {out['generation']} is active")
    elif cmd == "drop":
        lake.drop_corpus(args.name)
        print(f"{args.name}: dropped")


def _ops(lake: Any, args: argparse.Namespace) -> None:
    if args.ops_command == "tail":
        ops = lake.observed_ops(op=args.op, origin=args.origin, status=args.status, limit=args.limit)
        _print_result(["ts", "op", "origin", "ms", "ok", "rows", "error"],
                      [[o["ts"], o["op"], o["origin"], o["duration_ms"], o["ok"], o["rows"], o.get("error_code") or ""]
                       for o in reversed(ops)], "table")
    else:
        out = lake.op_stats(args.window)
        _print_result(["op", "origin", "count", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"],
                      [[s[k] for k in ("op", "origin", "count", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms")]
                       for s in out["ops"]], "table")


def _history(lake: Any, args: argparse.Namespace) -> None:
    if args.command == "journal":
        rows = lake.journal(dataset=args.dataset, corpus=args.corpus, op=args.op, since_snapshot=args.since_snapshot,
                            limit=args.limit)
        _print_result(["snapshot", "committed_at", "op", "dataset", "corpus", "added", "removed", "origin"],
                      [[r["snapshot_id"], f"{r['committed_at']:%Y-%m-%d %H:%M:%S}", r["op"] or "", r["dataset"] or "",
                        r["corpus"] or "", r["rows_added"], r["rows_removed"], r["origin"] or ""] for r in reversed(rows)],
                      "table")
    else:
        out = lake.drain_storage()
        print(f"moved {out['rows']} rows in {out['files']} rescued files back to the primary bucket "
              f"({out['remaining']} still rescued)")


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
