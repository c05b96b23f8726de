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
from pathlib import Path
from typing import Any

from lakehouse.errors import InvalidInput, LakehouseError

log = logging.getLogger("lakehouse")


def _root_arg(p: argparse.ArgumentParser, default: str = "./lake") -> None:
    p.add_argument("--root", default=os.environ.get("LH_ROOT", default),
                   help="lake folder (default: $LH_ROOT or %(default)s)")


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _key_value(text: str) -> tuple[str, Any]:
    """`--input key=value`: the value as JSON when it parses (3, true, ["a"]), else as the text it is."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


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
    for name, what in (("sync", "bring a corpus that follows its dataset up to date"),
                       ("rebuild", "build a new index generation and swap it in"),
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
    p.add_argument("--limit", type=int)

    p = sub.add_parser("storage", help="buckets: move rescued files back to the primary")
    ssub = p.add_subparsers(dest="storage_command", required=True)
    d = ssub.add_parser("drain", help="move rows written to the rescue bucket back to the primary bucket")
    _root_arg(d)

    _drift_parsers(sub)
    _distill_parsers(sub)
    _pathway_parsers(sub)
    _quality_parsers(sub)
    _profile_parsers(sub)

    p = sub.add_parser("workflow", help="run workflows: YAML DAGs of LLM prompts and operations")
    wsub = p.add_subparsers(dest="workflow_command", required=True)
    w = wsub.add_parser("run", help="run a workflow file or a named workflow, or resume a failed run")
    _root_arg(w)
    w.add_argument("workflow", metavar="FILE|NAME", help="a YAML file, or a shipped or <root>/workflows/ name")
    w.add_argument("--input", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="a run input, repeatable (VALUE is read as JSON when it parses, else as text)")
    w.add_argument("--resume", default=None, metavar="RUN_ID", help="finish this failed run (same YAML and inputs)")
    w.add_argument("--max-parallel", type=int, default=4)
    w.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="live per-node progress (default: when stderr is a terminal)")
    w.add_argument("--json", action="store_true", help="print the whole run as JSON")
    ls = wsub.add_parser("list", help="the shipped workflows and the lake's own")
    _root_arg(ls)
    g = wsub.add_parser("get", help="one run: status and each node's outcome")
    _root_arg(g)
    g.add_argument("run_id")
    g.add_argument("--json", action="store_true", help="print the whole run as JSON")

    p = sub.add_parser("audit", help="audit a change between two commits with several reviewer models (pr-audit)")
    _root_arg(p)
    p.add_argument("--repo", required=True, help="a git repository")
    p.add_argument("--base", required=True, help="the commit the change starts from (branch, tag, sha)")
    p.add_argument("--head", default="HEAD", help="the commit of the change (default %(default)s)")
    p.add_argument("--reviewer", action="append", dest="reviewers", default=None, metavar="MODEL",
                   help="a reviewer model or tier:<name>, repeatable (default: the tiers named review*)")
    p.add_argument("--corpora", type=_list, default=[], help="corpora of related code and docs, comma-separated")
    p.add_argument("--quorum", type=int, default=2, help="reviewers that must agree before a finding blocks")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="finish this failed audit run")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")

    p = sub.add_parser("serve", help="serve the HTTP API and web UI (waitress)")
    _root_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3100)
    p.add_argument("--threads", type=int, default=8)

    p = sub.add_parser("mcp", help="serve the lake to an MCP client over stdio (needs lakehouse[mcp])")
    _root_arg(p)
    return parser


def _group(sub: Any, name: str, help: str) -> Any:
    """A command with subcommands; the chosen one lands in `args.<name>_command`."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def _command(sub: Any, name: str, help: str, *positionals: str) -> argparse.ArgumentParser:
    """A (sub)command taking --root and `positionals`."""
    p = sub.add_parser(name, help=help)
    _root_arg(p)
    for arg in positionals:
        p.add_argument(arg)
    return p


def _drift_parsers(sub: Any) -> None:
    g = _group(sub, "drift", "measure drift: scorer, playbooks, embeddings, audit baselines")
    d = _command(g, "scorer", "re-score stored evidence with today's scorer")
    d.add_argument("--kind", default=None, help="only evidence of this kind")
    d.add_argument("--entries", action="store_true", help="list each drifted record")
    d = _command(g, "playbooks", "recorded answers no longer in today's top k")
    d.add_argument("--corpus", default=None)
    d.add_argument("-k", type=int)
    d.add_argument("--limit", type=int, help="playbooks checked, oldest first")
    d = _command(g, "embeddings", "drift between two samples of a corpus", "corpus")
    for side, what in (("a", "reference"), ("b", "current")):
        d.add_argument(f"--{side}", required=True,
                       help=f"the {what} sample: a generation number, or JSON {{\"ids_sql\": ...}} / {{\"since\": ...}}")
    d.add_argument("--tests", type=_list, default=None, help="ks,psi,mmd,classifier (default: all)")
    d.add_argument("--seed", type=int)
    d = _command(g, "audit", "the latest audit run against the mean of the runs before it")
    d.add_argument("--previous", type=int)
    d.add_argument("--threshold", type=float)
    d.add_argument("--min-delta", type=float)


def _distill_parsers(sub: Any) -> None:
    g = _group(sub, "distill", "evidence for training: collect, score, export SFT JSONL")
    d = _command(g, "collect", "build scored evidence from ops, playbooks and workflow runs")
    d.add_argument("--sources", type=_list, help="ops,playbooks,workflows (default: all)")
    d.add_argument("--since", default=None, help="ISO 8601 time")
    d.add_argument("--records", default=None, help="a JSONL file of evidence records to add")
    d = _command(g, "score", "score evidence records with today's scorer")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", default=None, help="a JSONL file of evidence records")
    src.add_argument("--ids", type=_list, default=None, help="ids of stored evidence, comma-separated")
    d = _command(g, "export", "stored evidence as SFT JSONL, through the contamination firewall")
    d.add_argument("--out", required=True)
    d.add_argument("--min-category", help="gold, usable (the default), weak or reject")
    d.add_argument("--holdout", default=None, help="the held-out evaluation set (.jsonl, .csv, .txt)")
    d.add_argument("--kind", default=None)
    d.add_argument("--embed", action="store_true", help="also drop near-duplicates by embedding cosine")


def _pathway_parsers(sub: Any) -> None:
    g = _group(sub, "pathways", "pathway memory: record, look up and replay sequences of operations")
    _command(g, "record", "remember the steps that reached a goal", "text").add_argument(
        "--steps", required=True, help='a JSON file: [{"op": ..., "input": {...}}, ...]')
    _command(g, "lookup", "pathways whose goal is most like a text", "text").add_argument("-k", type=int)
    _command(g, "replay", "run a pathway's steps again (exit 1 when one fails)", "id").add_argument(
        "--stop-on-failure", action="store_true")
    _command(g, "fingerprint", "the 32-bucket fingerprint of a text", "text")


def _quality_parsers(sub: Any) -> None:
    g = _group(sub, "truth", "check TOML truth rules in the read-only sandbox")
    _command(g, "check", "check a TOML file of [[rule]] tables (exit 1 when an error rule fails)", "file").add_argument(
        "--sample", type=int)
    g = _group(sub, "rules", "validation rules of datasets, checked by every ingest")
    _command(g, "put", 'declare rules from a JSON file: [{"dataset", "name", "kind", "params", ...}]', "file")
    _command(g, "list", "list rules").add_argument("--dataset", default=None)
    _command(g, "delete", "delete a rule", "dataset", "name")
    _command(g, "check", "run a dataset's rules now (exit 1 when an error rule fails)", "dataset").add_argument(
        "--sample", type=int)


def _profile_parsers(sub: Any) -> None:
    g = _group(sub, "profile", "profiles: API keys bound to datasets and corpora (read or write)")
    d = _command(g, "create", "create a profile and print its key (shown once)", "name")
    d.add_argument("--datasets", type=_list, help="dataset names or globs, comma-separated (sales_*)")
    d.add_argument("--corpora", type=_list, help="corpus names or globs, comma-separated")
    d.add_argument("--access", help="read (the default) or write")
    _command(g, "list", "list profiles (never their keys)")
    _command(g, "delete", "delete a profile: its key stops working", "name")
    _command(g, "rotate-key", "give a profile a new key (printed once); the old one stops working", "name")


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
        elif args.command in _REPORTS:
            return _REPORTS[args.command](lake, args)
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
        for w in res.warnings:  # failed `warn` validation rules: the ingest went ahead
            print(f"warning: rule {w['rule']} ({w['kind']}): {w['message']}", file=sys.stderr)
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
    elif cmd == "sync":
        out = lake.sync_corpus(args.name)
        print(f"{args.name}: +{out['added']} -{out['removed']} rows, snapshot {out['to']}")
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
        rows = lake.journal(**_given(dataset=args.dataset, corpus=args.corpus, op=args.op,
                                     since_snapshot=args.since_snapshot, limit=args.limit))
        _print_result(["snapshot", "committed_at", "op", "dataset", "corpus", "added", "removed", "origin"],
                      [[r["snapshot_id"], f"{r['committed_at']:%Y-%m-%d %H:%M:%S}", r["op"] or "", r["dataset"] or "",
                        r["corpus"] or "", r["rows_added"], r["rows_removed"], r["origin"] or ""] for r in reversed(rows)],
                      "table")
    else:
        out = lake.drain_storage()
        print(f"moved {out['rows']} rows in {out['files']} rescued files back to the primary bucket "
              f"({out['remaining']} still rescued)")


def _drift(lake: Any, args: argparse.Namespace) -> int:
    cmd, call = args.drift_command, lake.ops.call
    if cmd == "scorer":
        out = call("drift.scorer", kind=args.kind, entries=args.entries)
    elif cmd == "playbooks":
        out = call("drift.playbooks", _given(corpus=args.corpus, k=args.k, limit=args.limit))
    elif cmd == "embeddings":
        out = call("drift.embeddings", corpus=args.corpus, a=_selection(args.a, "a"), b=_selection(args.b, "b"),
                   **_given(tests=args.tests, seed=args.seed))
    else:
        out = call("drift.audit", _given(previous=args.previous, threshold=args.threshold, min_delta=args.min_delta))
    _print_json(out)
    return 0


def _selection(text: str, side: str) -> dict[str, Any]:
    """`--a 3` is generation 3; anything else is a JSON object ({"ids_sql": ...}, {"since": ..., "until": ...})."""
    if text.strip().isdigit():
        return {"generation": int(text)}
    value = _json(text, f"--{side}")
    if not isinstance(value, dict):
        raise InvalidInput(f"--{side} must be a generation number or a JSON object", code=f"invalid_{side}")
    return value


def _distill(lake: Any, args: argparse.Namespace) -> int:
    cmd, call = args.distill_command, lake.ops.call
    if cmd == "collect":
        records = _jsonl(args.records) if args.records else None
        out = call("distill.collect", _given(sources=args.sources, since=args.since, records=records))
    elif cmd == "score":
        out = call("distillation.score", records=_jsonl(args.file)) if args.file else call(
            "distillation.score", ids=args.ids)
    else:
        out = call("distill.export", _given(out=args.out, min_category=args.min_category, holdout=args.holdout,
                                           kind=args.kind, embed=args.embed))
    _print_json(out)
    return 0


def _pathways(lake: Any, args: argparse.Namespace) -> int:
    cmd, call = args.pathways_command, lake.ops.call
    if cmd == "record":
        steps = _json(_read(args.steps), args.steps)
        out = call("pathways.record", text=args.text, steps=steps if isinstance(steps, list) else [steps])
    elif cmd == "lookup":
        out = call("pathways.lookup", _given(text=args.text, k=args.k))
    elif cmd == "replay":
        out = call("pathways.replay", id=args.id, stop_on_failure=args.stop_on_failure)
        _print_json(out)
        return 0 if out["ok"] else 1
    else:
        out = call("pathways.fingerprint", text=args.text)
    _print_json(out)
    return 0


def _truth(lake: Any, args: argparse.Namespace) -> int:
    out = lake.ops.call("truth.check", _given(rules=_read(args.file), sample=args.sample))
    _print_json(out)
    return 0 if out["ok"] else 1


def _rules(lake: Any, args: argparse.Namespace) -> int:
    cmd, call = args.rules_command, lake.ops.call
    if cmd == "put":
        rules = _json(_read(args.file), args.file)
        out = call("rules.put", rules=rules.get("rules") if isinstance(rules, dict) else rules)
        print(f"{out['stored']} rules stored")
    elif cmd == "list":
        _print_result(["dataset", "name", "kind", "severity", "params"],
                      [[r["dataset"], r["name"], r["kind"], r["severity"], json.dumps(r["params"])]
                       for r in call("rules.list", dataset=args.dataset)], "table")
    elif cmd == "delete":
        call("rules.delete", dataset=args.dataset, name=args.name)
        print(f"{args.dataset}.{args.name}: deleted")
    else:
        out = call("rules.check", _given(dataset=args.dataset, sample=args.sample))
        _print_json(out)
        return 0 if out["passed"] else 1
    return 0


def _given(**args: Any) -> dict[str, Any]:
    """The options given on the command line: one left out takes the operation's own default (never a copy here)."""
    return {k: v for k, v in args.items() if v is not None}


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", code="invalid_file") from None


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{where} is not JSON: {exc}", code="invalid_json") from None


def _jsonl(path: str) -> list[Any]:
    return [_json(line, f"{path}, line {n}") for n, line in enumerate(_read(path).splitlines(), 1) if line.strip()]


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str, indent=1, ensure_ascii=False))


def _workflow(lake: Any, args: argparse.Namespace) -> int:
    """0 when the run succeeded, 1 when it failed (a YAML that does not load is a LakehouseError: 2)."""
    cmd = args.workflow_command
    if cmd == "list":
        _print_result(["name", "source", "inputs", "description"],
                      [[w["name"], w["source"], ", ".join(w["inputs"]),
                        w["description"] or f"error: {(w['error'] or {}).get('message', '')}"]
                       for w in lake.ops.call("workflow.list")], "table")
        return 0
    if cmd == "get":
        run = lake.ops.call("workflow.get", run_id=args.run_id)
    else:
        run = lake.ops.call("workflow.run", workflow=_workflow_source(args.workflow),
                            input=dict(args.input) if args.input or not args.resume else None, resume=args.resume,
                            max_parallel=args.max_parallel, progress=args.progress)
    if args.json:
        print(json.dumps(run, default=str, indent=1, ensure_ascii=False))
    else:
        rows = []
        for node_id, n in run["nodes"].items():
            problem = n["error"] or n["reason"] or {}
            shown = problem.get("message") or json.dumps(n["output"], default=str, ensure_ascii=False)
            rows.append([node_id, n["status"], n["attempts"], shown[:100]])
        _print_result(["node", "status", "attempts", "output / error"], rows, "table")
        print(f"run {run['run_id']}: {run['status']}")
    if run["status"] == "failed" and cmd == "run":
        print(f"resume with: lakehouse workflow run {args.workflow} --resume {run['run_id']}", file=sys.stderr)
    return 1 if run["status"] == "failed" else 0


def _audit(lake: Any, args: argparse.Namespace) -> int:
    """0 when the change is approved; 1 when changes are requested or the run failed."""
    out = lake.ops.call("audit.run", repo=str(Path(args.repo).expanduser().resolve()), base=args.base, head=args.head,
                        reviewers=args.reviewers, corpora=args.corpora, quorum=args.quorum, resume=args.resume,
                        progress=args.progress)
    if args.json:
        print(json.dumps(out, default=str, indent=1, ensure_ascii=False))
    elif out["status"] == "failed":
        print(f"error: the audit failed: {out['error']}", file=sys.stderr)
        print(f"resume with: lakehouse audit --repo {args.repo} --base {args.base} --resume {out['run_id']}",
              file=sys.stderr)
    else:
        print(f"{out['verdict']}: {out['reason']}")
        _print_result(["severity", "place", "check", "reviewers", "rationale"],
                      [[f["severity"], f"{f['file']}:{f['line']}", f["check"], ", ".join(f["reviewers"]),
                        f["rationale"][:80]] for f in out["findings"]], "table")
        print(f"report: {lake.root / out['report']['markdown']}")
    return 0 if out["verdict"] == "approve" and out["status"] == "succeeded" else 1


def _workflow_source(arg: str) -> str:
    """A file's YAML text, or the argument itself as a workflow name."""
    path = Path(arg).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read workflow file {arg!r}: {exc}", code="invalid_workflow") from None
    if path.suffix in (".yaml", ".yml") or "/" in arg:
        raise InvalidInput(f"no such workflow file: {arg!r}", code="file_not_found")
    return arg


# commands whose exit code is their answer (0 ok, 1 a finding or failure)
def _profile(lake: Any, args: argparse.Namespace) -> int:
    cmd = args.profile_command
    if cmd == "create":
        out = lake.ops.call("profile.create", _given(name=args.name, datasets=args.datasets, corpora=args.corpora,
                                                   access=args.access))
        print(out["key"])
        print(f"profile {out['name']} ({out['access']}): keep this key; it is not stored and cannot be shown again",
              file=sys.stderr)
    elif cmd == "list":
        _print_result(["name", "access", "datasets", "corpora"],
                      [[p["name"], p["access"], ",".join(p["datasets"]), ",".join(p["corpora"])]
                       for p in lake.list_profiles()], "table")
    elif cmd == "delete":
        lake.delete_profile(args.name)
        print(f"{args.name}: deleted")
    else:
        print(lake.rotate_profile_key(args.name)["key"])
    return 0


_REPORTS = {"drift": _drift, "distill": _distill, "pathways": _pathways, "truth": _truth, "rules": _rules,
            "workflow": _workflow, "audit": _audit, "profile": _profile}


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
