"""Many processes on one lake: writers append batches and add to a corpus, readers check what they see.

    python -m benchmarks stress --seconds 60                      # embedded: SQLite catalog, local data
    python -m benchmarks stress --seconds 60 --catalog postgres   # a throwaway PostgreSQL + moto S3, a root per process

Each writer process appends batches of known ids (`w<writer>-<batch>-<i>`) to dataset `events` and adds the same
ids to corpus `stress`, publishing how many batches it has committed. Each reader process repeatedly reads the
published counts, then queries: it must see at least those batches (a read sees every earlier commit, whichever
process made it), every batch whole (no partial batch: per writer and batch, exactly `--batch` rows), and counts
that never go down. At the end every committed row must be there once (lost rows: committed but absent) and corpus
keys unique. Prints rows written, rows seen, reads, errors and lost rows; exits 1 if any error or lost row.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import lakehouse
from benchmarks.common import base_parser, environment, positive_int, setup_logging, temp_dir, write_json

log = logging.getLogger("benchmarks.stress")
TESTS = Path(__file__).parents[1] / "tests"  # the throwaway PostgreSQL and S3 servers the tests start


def _rows(writer: int, batch: int, size: int) -> list[dict[str, Any]]:
    return [{"id": f"w{writer}-{batch}-{i}", "text": f"writer {writer} batch {batch} row {i}"} for i in range(size)]


def _csv(writer: int, batch: int, size: int) -> bytes:
    lines = "".join(f"w{writer}-{batch}-{i},{writer},{batch}\n" for i in range(size))
    return ("id,writer,batch\n" + lines).encode()


def _start(lake: lakehouse.Lake, start: Any, seconds: float) -> float:
    """Wait until every process has its lake open; the deadline, `seconds` from then."""
    lake.query("SELECT count(*) FROM events")
    start.wait()
    return time.time() + seconds


def _writer(root: str, where: dict[str, str], writer: int, size: int, seconds: float, start: Any, committed: Any,
            out: Any) -> None:
    report: dict[str, Any] = {"role": "writer", "batches": 0, "errors": []}
    try:
        with lakehouse.open(root, embedder="hash", **where) as lake:
            deadline = _start(lake, start, seconds)
            batch = 0
            while time.time() < deadline:
                lake.ingest(_csv(writer, batch, size), "events", format="csv", mode="append")
                lake.add_to_corpus("stress", _rows(writer, batch, size))
                batch += 1
                committed[writer] = batch  # after both commits: readers must now see this batch
            report["batches"] = batch
    except Exception as exc:  # counted, reported, and the run fails
        report["errors"].append(repr(exc)[:500])
        start.abort()
    out.put(report)


def _reader(root: str, where: dict[str, str], size: int, seconds: float, start: Any, committed: Any,
            out: Any) -> None:
    report: dict[str, Any] = {"role": "reader", "reads": 0, "errors": []}
    last_rows, last_corpus = 0, 0
    try:
        with lakehouse.open(root, embedder="hash", **where) as lake:
            deadline = _start(lake, start, seconds)
            while time.time() < deadline:
                published = list(committed)  # before the queries: all of this is committed already
                groups = lake.query("SELECT writer, batch, count(*) FROM events WHERE writer >= 0 GROUP BY ALL",
                                    max_rows=10**7).rows
                corpus = lake.query("SELECT count(*) FROM lake.lh_corpus.stress WHERE id LIKE 'w%'").rows[0][0]
                report["reads"] += 1
                partial = [g for g in groups if g[2] != size]
                seen = {w: {b for ww, b, _ in groups if ww == w} for w in range(len(published))}
                missing = [(w, b) for w, n in enumerate(published) for b in range(n) if b not in seen[w]]
                rows = sum(g[2] for g in groups)
                problems = [f"partial batches {partial[:3]}" if partial else "",
                            f"committed batches not seen {missing[:3]}" if missing else "",
                            f"rows went down {last_rows} -> {rows}" if rows < last_rows else "",
                            f"corpus went down {last_corpus} -> {corpus}" if corpus < last_corpus else "",
                            f"corpus behind: {corpus} < {sum(published) * size}" if corpus < sum(published) * size
                            else ""]
                report["errors"] += [p for p in problems if p]
                last_rows, last_corpus = rows, corpus
            report["last_rows"] = last_rows
    except Exception as exc:
        report["errors"].append(repr(exc)[:500])
        start.abort()
    out.put(report)


@contextlib.contextmanager
def _lake_location(catalog: str, where: dict[str, str] | None) -> Iterator[tuple[dict[str, str], bool]]:
    """(lakehouse.open's catalog/data_path arguments, whether each process gets a root of its own)."""
    if where is not None:
        yield where, True
        return
    if catalog == "sqlite":
        yield {}, False
        return
    sys.path.insert(0, str(TESTS))
    from shared_lake import SharedServices

    with SharedServices() as services, services.environment():
        yield services.new_lake(), True


def run(seconds: float, writers: int = 2, readers: int = 2, batch: int = 100, catalog: str = "sqlite",
        keep: bool = False, where: dict[str, str] | None = None) -> dict[str, Any]:
    """The stress run; `where` (catalog= and data_path=, S3 settings in the environment) puts it on a lake shared
    through those, a root per process, instead of starting services for `catalog`."""
    if where is not None:
        catalog = where["catalog"].split(":", 1)[0]
    with temp_dir("lakehouse-stress-", keep) as scratch, _lake_location(catalog, where) as (where, own_roots):
        shared_root = scratch / "lake"
        with lakehouse.open(shared_root, embedder="hash", **where) as lake:
            lake.ingest(b"id,writer,batch\nseed,-1,-1\n", "events", format="csv")
            lake.create_corpus("stress", rows=[{"id": "seed", "text": "seed row"}])
        ctx = multiprocessing.get_context("spawn")
        committed = ctx.Array("i", writers)
        out, start = ctx.Queue(), ctx.Barrier(writers + readers)

        def root(name: str) -> str:
            return str(scratch / name if own_roots else shared_root)

        procs = [ctx.Process(target=_writer, args=(root(f"w{w}"), where, w, batch, seconds, start, committed, out))
                 for w in range(writers)]
        procs += [ctx.Process(target=_reader, args=(root(f"r{r}"), where, batch, seconds, start, committed, out))
                  for r in range(readers)]
        for p in procs:
            p.start()
        reports = [out.get(timeout=seconds + 600) for _ in procs]
        for p in procs:
            p.join(60)
        with lakehouse.open(shared_root, embedder="hash", **where) as lake:
            ids = {r[0] for r in lake.sql("SELECT id FROM events WHERE id <> 'seed'").fetchall()}
            corpus = lake.sql("SELECT count(*), count(DISTINCT key) FROM lake.lh_corpus.stress "
                              "WHERE id <> 'seed'").fetchone()
    written = {f"w{w}-{b}-{i}" for w, n in enumerate(committed) for b in range(n) for i in range(batch)}
    errors = [e for r in reports for e in r["errors"]] + [f"exit code {p.exitcode}" for p in procs if p.exitcode]
    result = {
        "params": {"seconds": seconds, "writers": writers, "readers": readers, "batch": batch, "catalog": catalog},
        "environment": environment(),
        "rows_written": len(written), "rows_seen": len(ids), "corpus_rows": corpus[0], "corpus_keys": corpus[1],
        "reads": sum(r.get("reads", 0) for r in reports), "lost_rows": len(written - ids),
        "unexpected_rows": len(ids - written), "errors": len(errors), "error_samples": errors[:5],
    }
    result["all_passed"] = (not errors and not result["lost_rows"] and not result["unexpected_rows"]
                            and corpus[0] == corpus[1] == len(written))
    return result


def print_result(result: dict[str, Any], console: Console | None = None) -> None:
    p = result["params"]
    table = Table(title=f"stress: {p['writers']} writers x {p['readers']} readers, {p['seconds']:g} s, "
                        f"{p['catalog']} catalog")
    for name in ("metric", "value"):
        table.add_column(name)
    for key in ("rows_written", "rows_seen", "corpus_rows", "reads", "errors", "lost_rows", "unexpected_rows"):
        table.add_row(key.replace("_", " "), f"{result[key]:,}")
    (console or Console()).print(table)
    for sample in result["error_samples"]:
        log.error("%s", sample)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m benchmarks.stress", __doc__.splitlines()[0])
    for flag, kind, default, text in (("--seconds", float, 60.0, "how long the writers write"),
                                      ("--writers", positive_int, 2, "writer processes"),
                                      ("--readers", positive_int, 2, "reader processes"),
                                      ("--batch", positive_int, 100, "rows per batch")):
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default:g})")
    parser.add_argument("--catalog", choices=("sqlite", "postgres"), default="sqlite",
                        help="sqlite: the embedded default; postgres: a throwaway PostgreSQL catalog + moto S3 data")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    result = run(args.seconds, args.writers, args.readers, args.batch, args.catalog, keep=args.keep)
    print_result(result)
    if args.json:
        write_json(args.json, result, "stress.json")
    return 0 if result["all_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
