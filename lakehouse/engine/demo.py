"""`lakehouse demo`: generate the staffing data set, ingest it, apply a delta, ask it questions."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import lakehouse
from lakehouse.engine import demo_data, demo_retrieval
from lakehouse.engine.display import rows_table

log = logging.getLogger(__name__)

QUESTIONS: tuple[tuple[str, str], ...] = (
    ("Forklift operators with OSHA-10 in IL, by city",
     "SELECT city, count(*) AS workers, round(avg(hourly_rate), 2) AS avg_rate FROM workers "
     "WHERE role = 'Forklift Operator' AND state = 'IL' AND list_contains(certifications, 'OSHA-10') "
     "GROUP BY city ORDER BY workers DESC LIMIT 10"),
    ("Open job orders by state, with the workers available now for those roles",
     "WITH o AS (SELECT state, role, count(*) AS orders, sum(headcount) AS headcount FROM job_orders "
     "WHERE status = 'open' GROUP BY ALL), a AS (SELECT state, role, count(*) AS available FROM workers "
     "WHERE availability = 'immediate' GROUP BY ALL) SELECT o.state, sum(o.orders) AS open_orders, "
     "sum(o.headcount) AS headcount, sum(coalesce(a.available, 0)) AS available_now FROM o LEFT JOIN a "
     "USING (state, role) GROUP BY o.state ORDER BY headcount DESC LIMIT 8"),
    ("Placement outcomes by role (top 8 roles by placements)",
     "SELECT w.role, count(*) AS placements, round(avg(p.rating), 2) AS avg_rating, "
     "round(100.0 * count(*) FILTER (p.outcome = 'no-show') / count(*), 1) AS no_show_pct "
     "FROM placements p JOIN workers w ON w.id = p.worker_id GROUP BY w.role ORDER BY placements DESC LIMIT 8"),
    ("Most recently updated workers (the delta merged on read: newest row wins)",
     "SELECT id, name, role, city, state, availability, hourly_rate, updated_at FROM workers "
     "ORDER BY updated_at DESC, id LIMIT 5"),
)


HYBRID_SQL = (
    "SELECT w.name, w.city, w.role, array_to_string(w.certifications, ', ') AS certifications, "
    "w.availability, round(v.score, 3)::DECIMAL(4, 3) AS score "
    "FROM vector_search('workers', '{ask}', 8, ids := (SELECT list(id) FROM workers WHERE state = 'IL')) v "
    "JOIN workers w USING (id) ORDER BY v.rank"
)


def run_demo(root: str | Path, *, rows: int = 500_000, seed: int = 7, corpus_rows: int = 2_000,
             console: Console | None = None) -> dict[str, Any]:
    """Build (or rebuild) the demo lake at `root` and print the answers. Returns timings and row counts."""
    console = console or Console()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with lakehouse.open(root) as lake, tempfile.TemporaryDirectory(prefix="lakehouse-demo-") as tmp:
        t = time.perf_counter()
        with console.status(f"generating {rows:,} workers and related tables (seed {seed})"):
            tables = demo_data.generate(rows, seed)
            files = demo_data.write(tables, Path(tmp))
            delta_path = Path(tmp) / "workers_delta.parquet"
            pq.write_table(demo_data.workers_delta(tables, n=max(rows // 500, 10), seed=seed + 1), delta_path)
        timings["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        counts: dict[str, int] = {}
        with _progress(console) as progress:
            task = progress.add_task("ingesting", total=len(files) + 1)
            for name, path in files.items():
                progress.update(task, description=f"ingesting {name}")
                res = lake.ingest(path, name, mode="replace")
                counts[name] = res.rows
                progress.advance(task)
            progress.update(task, description="applying the workers delta")
            res = lake.ingest(delta_path, "workers", mode="delta", key="id")
            counts["workers_delta"] = res.rows
            progress.advance(task)
        timings["ingest_s"] = time.perf_counter() - t
    # past placements are months old: a one-year half-life keeps their outcomes in play for the demo
    with lakehouse.open(root, playbook_half_life_days=365.0) as lake:
        console.print(f"[bold]Lake[/bold] {lake.root}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        t = time.perf_counter()
        for title, sql in QUESTIONS:
            res = lake.query(sql)
            _print_table(console, title, [c["name"] for c in res.columns], res.rows, res.elapsed_ms)
        timings["questions_s"] = time.perf_counter() - t
        t = time.perf_counter()
        counts.update(demo_retrieval.build_corpora(lake, console, min(corpus_rows, rows)))
        timings["corpora_s"] = time.perf_counter() - t
        res = lake.query(HYBRID_SQL.format(ask=demo_retrieval.ASK))
        _print_table(console, f"Hybrid SQL + vector: \"{demo_retrieval.ASK}\" (vector_search over the workers corpus, "
                     "ids := IL workers)", [c["name"] for c in res.columns], res.rows, res.elapsed_ms)
        t = time.perf_counter()
        recorded = demo_retrieval.record_placements(lake, limit=400)
        counts["playbook_outcomes"] = recorded["recorded"]
        demo_retrieval.matrix_for_open_job(lake, console)
        followed = demo_retrieval.follow_update(lake, console)
        after = followed.get("after", [])
        counts["followed_update_rank"] = after.index(str(followed["worker"])) + 1 if str(followed.get("worker")) in after \
            else 0
        demo_retrieval.grounded_answer(lake, console)
        timings["retrieval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    console.print("[dim]" + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()) + "[/dim]")
    return {"counts": counts, "timings": timings}


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _print_table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 elapsed_ms: float) -> None:
    console.print(f"\n[bold]{title}[/bold]  [dim]({elapsed_ms:.0f} ms)[/dim]")
    console.print(rows_table(columns, rows))
