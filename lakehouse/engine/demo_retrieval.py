"""The retrieval half of `lakehouse demo`: corpora, playbooks learned from placements, a matrix
search for an open job order, and a grounded answer (extractive when no LLM is configured)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

WORKER_SQL = (
    "SELECT id, role || ' in ' || city || ', ' || state || '. ' || years_experience || ' years experience. "
    "Certifications: ' || coalesce(nullif(array_to_string(certifications, ', '), ''), 'none') || "
    "'. Available: ' || availability || '.' AS profile, role, state, city "
    "FROM workers USING SAMPLE reservoir({n} ROWS) REPEATABLE (42)"
)
CANDIDATE_SQL = (
    "SELECT id, role || ' candidate in ' || city || ', ' || state || '. ' || years_experience || "
    "' years. ' || left(resume, 240) AS profile, role, state, city, source "
    "FROM candidates USING SAMPLE reservoir({n} ROWS) REPEATABLE (42)"
)
JOB_SQL = (
    "SELECT id, client || ' needs ' || headcount || ' ' || role || ' in ' || city || ', ' || state || "
    "'. Requires: ' || coalesce(nullif(array_to_string(required_certifications, ', '), ''), 'none') || '. ' || "
    "notes AS posting, role, state, city, status FROM job_orders USING SAMPLE reservoir({n} ROWS) REPEATABLE (42)"
)
# What worked before: completed placements rated 4-5 are successes, no-shows and terminations failures.
PLACEMENTS_SQL = (
    "SELECT j.role || ' in ' || j.city || ', ' || j.state || coalesce('. Requires: ' || "
    "nullif(array_to_string(j.required_certifications, ', '), ''), '') AS query, p.worker_id AS answer_id, "
    "CASE WHEN p.outcome = 'completed' THEN 1 ELSE -1 END AS outcome, p.placed_at AS recorded_at "
    "FROM placements p JOIN job_orders j ON j.id = p.job_order_id "
    "WHERE p.worker_id::VARCHAR IN (SELECT id FROM lake.lh_corpus.workers) "
    "AND (p.outcome IN ('no-show', 'terminated') OR (p.outcome = 'completed' AND p.rating >= 4)) "
    "ORDER BY p.id LIMIT {n}"
)
OPEN_JOB_SQL = (
    "SELECT id, client, role, city, state, required_certifications, role || ' in ' || city || ', ' || state || "
    "coalesce('. Requires: ' || nullif(array_to_string(required_certifications, ', '), ''), '') AS query "
    "FROM job_orders WHERE status = 'open' AND role = 'Forklift Operator' AND state = 'IL' ORDER BY id LIMIT 1"
)
ASK = "find me a forklift operator with OSHA-10 in IL"


def build_corpora(lake: Lake, console: Console, workers: int) -> dict[str, int]:
    counts = {}
    for name, sql, text, meta, n in (
        ("workers", WORKER_SQL, "profile", ["role", "state", "city"], workers),
        ("candidates", CANDIDATE_SQL, "profile", ["role", "state", "city", "source"], max(workers // 6, 20)),
        ("job_orders", JOB_SQL, "posting", ["role", "state", "city", "status"], max(workers // 6, 20)),
    ):
        with console.status(f"embedding {n:,} rows into the '{name}' corpus ({lake.settings.embedder})"):
            info = lake.create_corpus(name, sql=sql.format(n=n), text=text, metadata=meta, replace=True)
        counts[f"{name}_corpus"] = info["rows"]
    return counts


def record_placements(lake: Lake, limit: int) -> dict[str, Any]:
    rows = lake.sql(PLACEMENTS_SQL.format(n=limit)).fetchall()
    lake.playbooks.forget("demo:placements")  # a re-run replaces them
    entries = [{"query": q, "corpus": "workers", "answer_id": a, "outcome": o, "recorded_at": r.isoformat(),
                "source": "demo:placements"} for q, a, o, r in rows]
    return lake.record_playbooks(entries)


def matrix_for_open_job(lake: Lake, console: Console) -> dict[str, Any]:
    job = lake.sql(OPEN_JOB_SQL).fetchone()
    if job is None:
        return {}
    query = job[6]
    t = time.perf_counter()
    res = lake.matrix_search(query, ["workers", "candidates"], use_playbook=True, metadata_filter={"state": job[4]})
    console.print(f"\n[bold]Matrix search for open job order {job[0]} ({job[1]}): \"{query}\"[/bold]  "
                  f"[dim]({(time.perf_counter() - t) * 1000:.0f} ms; workers + candidates + playbooks from past "
                  f"placements, metadata_filter state={job[4]}; {res.dropped['metadata_filter_rows']:,} rows outside "
                  f"{job[4]} skipped, {len(res.dropped['relevance'])} dropped as not relevant)[/dim]")
    table = Table("rank", "corpus", "id", "score", "source", "text")
    for h in res.results:
        table.add_row(str(h.rank), h.corpus, h.id, f"{h.score:.3f}", h.source, h.text[:90].replace("[", "\\["))
    console.print(table)
    return res.to_dict()


def grounded_answer(lake: Lake, console: Console) -> dict[str, Any]:
    out = lake.ask(ASK, corpora=["workers", "candidates"], k=5, metadata_filter={"state": "IL"})
    console.print(f"\n[bold]Ask: \"{ASK}\"[/bold]  [dim](retrieval {out['retrieval_ms']:.0f} ms, "
                  f"answered by: {out['answered_by']})[/dim]")
    console.print(out["answer"], markup=False)  # answers and notes are text: "[1]" and "[models]" stay as written
    if out.get("note"):
        console.print(out["note"], style="dim", markup=False)
    return out
