"""Ingest and query through Lakehouse vs plain DuckDB, side by side on the same files.

    python -m benchmarks.ingest [--rows 500000] [--repeat 3] [--query-repeat 20] [--json out.json]

1. Ingest of the demo `workers` CSV: `Lake.ingest` into a fresh lake vs `CREATE TABLE AS SELECT * FROM
   read_csv(...)` into a fresh DuckDB file (median of --repeat; target <= 1.5x).
2. A group-by and a filtered query: `Lake.query` vs plain DuckDB over the same Parquet files the lake
   wrote (p50 of --query-repeat after 2 warm-ups; target <= 1.2x).
3. Recording every operation (the ObservedOp, its summaries, the op log) on vs off (`observer.enabled`), for
   `Lake.ingest` (median of --repeat) and `Lake.query` (p50): target <= 1.03x.
"""

from __future__ import annotations

import cProfile
import io
import math
import pstats
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console

import lakehouse
from benchmarks.common import (
    Comparison,
    base_parser,
    environment,
    interleaved,
    log,
    p50,
    positive_int,
    print_table,
    remove,
    setup_logging,
    temp_dir,
    time_call,
    write_json,
)
from lakehouse.engine import demo_data
from lakehouse.engine.names import sql_string

INGEST_TARGET = 1.5
QUERY_TARGET = 1.2
RECORDING_TARGET = 1.03
WARMUP = 2

QUERIES: dict[str, str] = {
    "group-by": "SELECT state, role, count(*) AS n, avg(hourly_rate) AS avg_rate FROM workers "
                "GROUP BY ALL ORDER BY ALL",
    # certifications is '[a, b]' text when ingested from CSV; the cast makes it a list either way
    "filtered": "SELECT city, count(*) AS n, round(avg(hourly_rate), 2) AS avg_rate FROM workers "
                "WHERE role = 'Forklift Operator' AND state = 'IL' "
                "AND list_contains(certifications::VARCHAR[], 'OSHA-10') GROUP BY city ORDER BY n DESC, city",
}


def make_csv(rows: int, directory: Path) -> Path:
    """The demo `workers` table with `rows` rows, written as CSV."""
    tables = demo_data.generate(rows)
    return demo_data.write({"workers": tables["workers"]}, directory, format="csv")["workers"]


def lake_ingest(root: Path, csv: Path, record: bool = True) -> tuple[float, float, int]:
    """(ingest seconds, open+ingest+close seconds, rows) for one fresh lake at `root`."""
    remove(root)
    total, (ingest_s, rows) = time_call(lambda: _lake_ingest(root, csv, record))
    return ingest_s, total, rows


def _lake_ingest(root: Path, csv: Path, record: bool) -> tuple[float, int]:
    with lakehouse.open(root) as lake:
        lake.observer.enabled = record
        seconds, result = time_call(lambda: lake.ingest(csv, "workers"))
    return seconds, result.rows


def plain_ingest(db: Path, csv: Path) -> tuple[float, float, int]:
    """(CTAS seconds, connect+CTAS+close seconds, rows) for one fresh DuckDB file `db`."""
    remove(db)
    remove(db.with_name(db.name + ".wal"))
    total, (ctas_s, rows) = time_call(lambda: _plain_ingest(db, csv))
    return ctas_s, total, rows


def _plain_ingest(db: Path, csv: Path) -> tuple[float, int]:
    con = duckdb.connect(str(db))
    try:
        seconds, rel = time_call(
            lambda: con.execute(f"CREATE TABLE workers AS SELECT * FROM read_csv({sql_string(str(csv))})").fetchone())
        return seconds, int(rel[0])
    finally:
        con.close()


def bench_ingest(csv: Path, work: Path, rows: int, repeat: int) -> tuple[list[Comparison], Path]:
    """Ingest both ways `repeat` times, alternating who goes first; returns the comparisons and the last lake."""
    lake_s: list[float] = []
    lake_total: list[float] = []
    quiet_s: list[float] = []
    plain_s: list[float] = []
    plain_total: list[float] = []
    last_lake = work / f"lake-{repeat - 1}"
    for i in range(repeat):
        order = ("lake", "quiet", "plain") if i % 2 == 0 else ("plain", "quiet", "lake")
        for side in order:
            if side == "lake":
                s, total, n = lake_ingest(work / f"lake-{i}", csv)
                lake_s.append(s)
                lake_total.append(total)
            elif side == "quiet":
                s, _, n = lake_ingest(work / f"quiet-{i}", csv, record=False)
                remove(work / f"quiet-{i}")
                quiet_s.append(s)
            else:
                db = work / f"plain-{i}.duckdb"
                s, total, n = plain_ingest(db, csv)
                remove(db)
                plain_s.append(s)
                plain_total.append(total)
            if n != rows:
                raise RuntimeError(f"{side} ingest loaded {n} rows, expected {rows}")
            log.info("ingest %d/%d %s: %.3f s (with open/close %.3f s)", i + 1, repeat, side, s, total)
        if i < repeat - 1:
            remove(work / f"lake-{i}")
    return [
        Comparison("ingest CSV", "Lake.ingest", lake_s, "DuckDB CTAS read_csv (file db)", plain_s,
                   INGEST_TARGET, "median"),
        Comparison("ingest CSV incl. open/close", "open + Lake.ingest + close", lake_total,
                   "connect + CTAS + close", plain_total, None, "median",
                   note="informational: includes lake open (extensions, catalog, UDFs) and close"),
        Comparison("recording overhead (ingest)", "Lake.ingest, recorded", lake_s, "Lake.ingest, recording off",
                   quiet_s, RECORDING_TARGET, "median"),
    ], last_lake


def lake_files(lake: lakehouse.Lake) -> list[str]:
    """The Parquet files DuckLake holds for `workers`."""
    files = [r[0] for r in lake.sql("SELECT data_file FROM ducklake_list_files('lake', 'workers')").fetchall()]
    if not files:
        raise RuntimeError("DuckLake lists no data files for workers")
    return files


def plain_over(files: Sequence[str], rows: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a `workers` view over exactly these Parquet files."""
    con = duckdb.connect()
    listing = ", ".join(sql_string(f) for f in files)
    con.execute(f"CREATE VIEW workers AS SELECT * FROM read_parquet([{listing}])")
    found = con.execute("SELECT count(*) FROM workers").fetchone()[0]
    if found != rows:
        con.close()
        raise RuntimeError(f"the lake's Parquet files hold {found} rows, expected {rows}")
    return con


def same_rows(a: list[list[Any]], b: list[list[Any]]) -> bool:
    """Equal results, floats compared with a relative tolerance (parallel sums differ in the last bits)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        if len(ra) != len(rb):
            return False
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def bench_queries(root: Path, rows: int, repeat: int) -> tuple[list[Comparison], list[Comparison], dict[str, Any]]:
    """Lake.query (log on / off) vs plain DuckDB over the lake's Parquet files, interleaved."""
    query_cmp: list[Comparison] = []
    recording_cmp: list[Comparison] = []
    with lakehouse.open(root) as lake, lakehouse.open(root) as quiet:
        quiet.observer.enabled = False
        files = lake_files(lake)
        log.info("plain DuckDB reads the lake's %d Parquet file(s)", len(files))
        plain = plain_over(files, rows)
        try:
            for name, sql in QUERIES.items():
                expected = [list(r) for r in plain.execute(sql).fetchall()]
                got = lake.query(sql).rows
                if not same_rows(got, expected):
                    raise RuntimeError(f"{name}: Lake.query and plain DuckDB disagree")
                samples = interleaved({
                    "lake": lambda sql=sql: lake.query(sql),
                    "quiet": lambda sql=sql: quiet.query(sql),
                    "plain": lambda sql=sql: plain.execute(sql).fetchall(),
                }, repeat, warmup=WARMUP)
                log.info("query %s: %d rows; p50 lake %.2f ms, no log %.2f ms, plain %.2f ms", name, len(got),
                         *(p50(samples[k]) * 1e3 for k in ("lake", "quiet", "plain")))
                query_cmp.append(Comparison(f"query {name}", "Lake.query", samples["lake"],
                                            "DuckDB over the lake's Parquet", samples["plain"], QUERY_TARGET, "p50"))
                recording_cmp.append(Comparison(f"recording overhead ({name})", "Lake.query, recorded",
                                                samples["lake"], "Lake.query, recording off", samples["quiet"],
                                                RECORDING_TARGET, "p50"))
        finally:
            plain.close()
    return query_cmp, recording_cmp, {"parquet_files": len(files), "queries": dict(QUERIES)}


def profile_ingest(csv: Path, root: Path, top: int = 30) -> str:
    """cProfile of one Lake.ingest into a fresh lake; the top functions by cumulative time."""
    remove(root)
    with lakehouse.open(root) as lake:
        prof = cProfile.Profile()
        prof.runcall(lake.ingest, csv, "workers")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    remove(root)
    return out.getvalue()


def run(rows: int = 500_000, repeat: int = 3, query_repeat: int = 20, *, keep: bool = False,
        profile: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run every measurement, print the table and return the results (what --json writes)."""
    with temp_dir("lakehouse-bench-ingest-", keep=keep) as work:
        log.info("generating %s demo workers as CSV", f"{rows:,}")
        csv = make_csv(rows, work / "input")
        log.info("%s: %.1f MB", csv.name, csv.stat().st_size / 1e6)
        ingest_cmp, last_lake = bench_ingest(csv, work, rows, repeat)
        query_cmp, recording_cmp, query_info = bench_queries(last_lake, rows, query_repeat)
        profile_text = profile_ingest(csv, work / "lake-profile") if profile else None
        csv_bytes = csv.stat().st_size
    comparisons = ingest_cmp + query_cmp + recording_cmp
    print_table(f"Lakehouse vs plain DuckDB: {rows:,} workers (ingest x{repeat}, queries x{query_repeat})",
                comparisons, console)
    keys = (["ingest", "ingest_with_open", "recording_ingest"] + [f"query_{n}" for n in QUERIES]
            + [f"recording_{n}" for n in QUERIES])
    results: dict[str, Any] = {
        "benchmark": "ingest",
        "environment": environment(),
        "params": {"rows": rows, "repeat": repeat, "query_repeat": query_repeat, "warmup": WARMUP,
                   "csv_bytes": csv_bytes, **query_info},
        "comparisons": {k: c.to_dict() for k, c in zip(keys, comparisons, strict=True)},
        "all_passed": all(c.passed is not False for c in comparisons),
    }
    if profile_text is not None:
        results["profile"] = profile_text
        log.info("profile of one Lake.ingest:\n%s", profile_text)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser("python -m benchmarks.ingest", __doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=500_000, help="workers rows (default 500000)")
    parser.add_argument("--repeat", type=positive_int, default=3, help="ingests per side (default 3)")
    parser.add_argument("--query-repeat", type=positive_int, default=20, help="timed runs per query (default 20)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one Lake.ingest")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    results = run(args.rows, args.repeat, args.query_repeat, keep=args.keep, profile=args.profile)
    if args.json:
        write_json(args.json, results, "ingest.json")
    return 1 if args.check and not results["all_passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
