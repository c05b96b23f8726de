"""The retrieval half of `lakehouse demo`: corpora, playbooks learned from placements, a matrix
search for an open job order, and a grounded answer (extractive when no LLM is configured)."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
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


PROFILE_ASK = "NCCCO certified tower crane operator for night work in Joliet, IL"


def build_corpora(lake: Lake, console: Console, workers: int) -> dict[str, int]:
    """The workers corpus follows a `worker_profiles` dataset (a sample of the workers, one profile text each),
    so later ingests into it reach search; candidates and job orders are corpora of a query's rows."""
    counts = {}
    sample = lake.sql(WORKER_SQL.format(n=workers)).arrow()
    buf = io.BytesIO()
    pq.write_table(sample if isinstance(sample, pa.Table) else sample.read_all(), buf)
    lake.ingest(buf.getvalue(), "worker_profiles", mode="replace", filename="worker_profiles.parquet")
    with console.status(f"embedding {workers:,} rows into the 'workers' corpus ({lake.settings.embedder})"):
        info = lake.create_corpus("workers", dataset="worker_profiles", text="profile",
                                  metadata=["role", "state", "city"], replace=True)
    counts["workers_corpus"] = info["rows"]
    for name, sql, text, meta, n in (
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


def follow_update(lake: Lake, console: Console) -> dict[str, Any]:
    """A delta into `worker_profiles` reaches the workers corpus in the same ingest: a worker who just got the
    certification a client asks for moves to the top of the search."""
    before = lake.vector_search("workers", PROFILE_ASK, 3)
    chosen = lake.sql("SELECT id, role, state, city FROM worker_profiles WHERE state = 'IL' ORDER BY id "
                      "LIMIT 1 OFFSET 3").fetchone()
    if chosen is None:
        return {}
    profile = (f"Tower Crane Operator in Joliet, IL. Newly NCCCO certified for tower cranes, available for night "
               f"work. Previously {chosen[1]} in {chosen[3]}.")
    delta = pa.table({"id": [chosen[0]], "profile": [profile], "role": ["Tower Crane Operator"],
                      "state": ["IL"], "city": ["Joliet"]})
    buf = io.BytesIO()
    pq.write_table(delta, buf)
    res = lake.ingest(buf.getvalue(), "worker_profiles", mode="delta", key="id", filename="profile_update.parquet")
    after = lake.vector_search("workers", PROFILE_ASK, 3)
    synced = res.followers.get("workers", {})
    console.print(f"\n[bold]A delta reaches search: \"{PROFILE_ASK}\"[/bold]  [dim](worker {chosen[0]}'s profile "
                  f"updated by one delta ingest; the workers corpus re-embedded {synced.get('added', 0)} row in the "
                  "same operation)[/dim]")
    table = Table("", "1st", "2nd", "3rd")
    table.add_row("before", *[f"{h.id} ({h.score:.3f})" for h in before])
    table.add_row("after", *[f"{h.id} ({h.score:.3f})" for h in after])
    console.print(table)
    return {"worker": chosen[0], "before": [h.id for h in before], "after": [h.id for h in after]}


def grounded_answer(lake: Lake, console: Console) -> dict[str, Any]:
    out = lake.ask(ASK, corpora=["workers", "candidates"], k=5, metadata_filter={"state": "IL"})
    console.print(f"\n[bold]Ask: \"{ASK}\"[/bold]  [dim](retrieval {out['retrieval_ms']:.0f} ms, "
                  f"answered by: {out['answered_by']})[/dim]")
    console.print(out["answer"], markup=False)  # answers and notes are text: "[1]" and "[models]" stay as written
    if out.get("note"):
        console.print(out["note"], style="dim", markup=False)
    return out
