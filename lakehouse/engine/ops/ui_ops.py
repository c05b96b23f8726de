"""Operations behind the web UI: a page of a dataset's or a corpus's rows, and the staffing console's open job
orders with the probability of filling each.

    lake.ops.call("dataset.rows", name="workers", offset=50, limit=50)
    lake.ops.call("staffing.job_orders", state="IL", limit=12)      # each with the matrix.search arguments
    lake.ops.call("staffing.fill_probability", job_order_ids=[3, 7])

Fill probability (see the README's "Web UI" section): each match of a job order (matrix search over the worker
and candidate corpora, the job order's state as metadata filter, playbooks applied) gets a quality
q = clamp((score - relevance_threshold) / (1 - relevance_threshold), 0, 1); past placements give a success rate
r = (successes + 1) / (placements + 2) for the same role and state (else the role, else all placements, each
needing MIN_HISTORY placements); each match fills one opening with probability p = q * r, independently; the
fill probability is P(at least headcount of them do) (a Poisson binomial tail).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import Field

from lakehouse.engine import catalog
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.types import CorpusName, DatasetName, NonBlank
from lakehouse.engine.safe_sql import read_arrow, run_query
from lakehouse.engine.vectors import store
from lakehouse.errors import InvalidInput, NotFound, Unprocessable, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

PAGE_MAX = 1000
JOB_COLUMNS = ("id", "client", "role", "city", "state", "headcount", "required_certifications", "status")
OPTIONAL_JOB_COLUMNS = ("start_date", "hourly_rate")
SUCCESS_OUTCOMES = ("completed", "active")  # the worker showed up and stayed; no-show and terminated did not
MIN_HISTORY = 10  # placements a scope needs before its success rate is used
MATCHES_MIN, MATCHES_MAX = 8, 50  # matches considered per job order: twice the headcount, within these bounds
DEFAULT_CORPORA = ["workers", "candidates"]


# -- pages of rows -----------------------------------------------------------------------------


class DatasetRows(Input):
    name: DatasetName
    offset: int = Field(0, ge=0, le=2**40)
    limit: int = Field(50, ge=1, le=PAGE_MAX)


def _read(lake: Lake, dataset: str, sql: str, params: list[Any] | None = None) -> pa.Table | None:
    """Rows of SQL the engine wrote over `dataset` (names checked, values as parameters), on the sandboxed read-only
    instance; None when the dataset does not exist (looked up only then: each catalog query costs milliseconds)."""
    try:
        return read_arrow(lake.ctx, sql, params, check=False)
    except Unprocessable:
        with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
            if catalog.dataset_row(cur, dataset) is None:
                return None
        raise


def _dataset_rows(lake: Lake, inp: DatasetRows) -> dict[str, Any]:
    table = f"lake.main.{inp.name}"
    counted = _read(lake, inp.name, f"SELECT count(*) FROM {table}")
    if counted is None:
        raise NotFound(f"no dataset named {inp.name!r}", code="dataset_not_found")
    # ORDER BY ALL: the same page for the same offset (scan order is not guaranteed), ids first when they lead
    return {"name": inp.name, **_page(lake, f"SELECT * FROM {table} ORDER BY ALL", counted, inp.offset, inp.limit)}


def _page(lake: Lake, select: str, counted: pa.Table, offset: int, limit: int) -> dict[str, Any]:
    """One page of a query the engine wrote, on the sandboxed read-only instance; `counted`: its total."""
    page = run_query(lake.ctx, f"{select} LIMIT ? OFFSET ?", [limit, offset], max_rows=limit,
                     timeout_s=lake.settings.query_timeout_s)
    return {"columns": page.columns, "rows": page.rows, "offset": offset, "limit": limit,
            "total": int(counted.column(0)[0].as_py())}


class CorpusRows(Input):
    name: CorpusName
    offset: int = Field(0, ge=0, le=2**40)
    limit: int = Field(50, ge=1, le=PAGE_MAX)


def _corpus_rows(lake: Lake, inp: CorpusRows) -> dict[str, Any]:
    if not lake.vectors.exists(inp.name):
        raise NotFound(f"no corpus named {inp.name!r}", code="corpus_not_found")
    table = store.table(inp.name)
    counted = read_arrow(lake.ctx, f"SELECT count(*) FROM {table}", check=False)
    page = _page(lake, f"SELECT id, text, metadata FROM {table} ORDER BY key", counted, inp.offset, inp.limit)
    for row in page["rows"]:
        row[2] = json.loads(row[2]) if row[2] else {}
    page["columns"][2]["type"] = "JSON"
    return {"name": inp.name, **page}


# -- the staffing console ----------------------------------------------------------------------


class JobOrders(Input):
    dataset: DatasetName = "job_orders"
    status: NonBlank | None = Field("open", description="only job orders with this status (None: any)")
    state: NonBlank | None = Field(None, description="only job orders in this state")
    ids: list[int] | None = Field(None, max_length=PAGE_MAX, description="only these job orders")
    corpora: list[CorpusName] = Field(DEFAULT_CORPORA, min_length=1, max_length=16,
                                      description="corpora to match workers and candidates in")
    offset: int = Field(0, ge=0, le=2**40)
    limit: int = Field(12, ge=1, le=PAGE_MAX)


def job_query(role: str, city: str, state: str, certifications: list[str]) -> str:
    """A job order as a search query: the words past placements were recorded under (lakehouse demo)."""
    text = f"{role} in {city}, {state}"
    return f"{text}. Requires: {', '.join(certifications)}" if certifications else text


def _certifications(value: Any) -> list[str]:
    """A list column, or its CSV spelling '[a, b]'."""
    if value is None:
        return []
    if isinstance(value, str):
        inner = value.strip().removeprefix("[").removesuffix("]")
        return [c.strip() for c in inner.split(",") if c.strip()]
    return [str(c) for c in value]


def _jobs(lake: Lake, inp: JobOrders) -> dict[str, Any]:
    where = "(?::VARCHAR IS NULL OR status = ?) AND (?::VARCHAR IS NULL OR state = ?)"
    params: list[Any] = [inp.status, inp.status, inp.state, inp.state]
    if inp.ids is not None:
        where += " AND list_contains(?::BIGINT[], id)"
        params.append(inp.ids)
    source = f"FROM lake.main.{inp.dataset} WHERE {where}"
    # the page and the total in one read: each read of the lake pays the catalog's cost
    try:
        tbl = _read(lake, inp.dataset, f"SELECT *, count(*) OVER () AS lh_total {source} ORDER BY id LIMIT ? "
                    "OFFSET ?", [*params, inp.limit, inp.offset])
    except Unprocessable:  # say which columns a job order needs, rather than which one DuckDB missed first
        _check_columns(read_arrow(lake.ctx, f"SELECT * FROM lake.main.{inp.dataset} LIMIT 0", check=False), inp.dataset)
        raise
    if tbl is None:
        raise NotFound(f"no dataset named {inp.dataset!r}", code="dataset_not_found")
    _check_columns(tbl, inp.dataset)
    if tbl.num_rows:
        total = tbl.column("lh_total")[0].as_py()
    else:  # past the last page
        total = read_arrow(lake.ctx, f"SELECT count(*) {source}", params, check=False).column(0)[0].as_py()
    tbl = tbl.select([*JOB_COLUMNS, *(c for c in OPTIONAL_JOB_COLUMNS if c in tbl.column_names)])
    corpora = [c for c in dict.fromkeys(inp.corpora) if _corpus_exists(lake, c)]
    jobs = []
    for row in tbl.to_pylist():
        row["required_certifications"] = certs = _certifications(row["required_certifications"])
        row["query"] = query = job_query(str(row["role"]), str(row["city"]), str(row["state"]), certs)
        matches = min(max(MATCHES_MIN, 2 * int(row["headcount"] or 0)), MATCHES_MAX)
        # exactly what the console passes to matrix.search, and what the fill probability is computed from
        row["search"] = {"query": query, "corpora": corpora, "metadata_filter": {"state": [row["state"]]},
                         "use_playbook": True, "k_per_corpus": matches, "top": matches} if corpora else None
        jobs.append(row)
    return {"dataset": inp.dataset, "total": int(total), "offset": inp.offset, "limit": inp.limit,
            "corpora": corpora, "missing_corpora": [c for c in inp.corpora if c not in corpora], "job_orders": jobs}


def _check_columns(tbl: pa.Table, dataset: str) -> None:
    missing = [c for c in JOB_COLUMNS if c not in tbl.column_names]
    if missing:
        raise InvalidInput(f"dataset {dataset!r} has no column {', '.join(map(repr, missing))}; job orders need "
                           f"{', '.join(JOB_COLUMNS)}", code="not_job_orders", field="dataset")


def _corpus_exists(lake: Lake, name: str) -> bool:
    try:
        lake.vectors.state(name)  # loaded once, then held in memory: the searches need it anyway
    except NotFound:
        return False
    return True


class FillProbability(Input):
    job_order_ids: list[int] = Field(min_length=1, max_length=100)
    dataset: DatasetName = "job_orders"
    placements: DatasetName | None = Field("placements", description="past placements (None: no history)")
    corpora: list[CorpusName] = Field(DEFAULT_CORPORA, min_length=1, max_length=16)


def _history(lake: Lake, jobs: str, placements: str | None) -> dict[tuple[str | None, str | None], list[int]]:
    """(role, state) -> [placements, successes]; (role, None) and (None, None) hold the wider scopes."""
    if placements is None:
        return {}
    tbl = _read(lake, placements, f"SELECT j.role, j.state, count(*) AS n, count(*) FILTER (p.outcome IN "
                f"({', '.join('?' * len(SUCCESS_OUTCOMES))})) AS ok FROM lake.main.{placements} p "
                f"JOIN lake.main.{jobs} j ON j.id = p.job_order_id GROUP BY ALL", list(SUCCESS_OUTCOMES))
    if tbl is None:
        return {}
    out: dict[tuple[str | None, str | None], list[int]] = {}
    for role, state, n, ok in zip(*(tbl.column(c).to_pylist() for c in ("role", "state", "n", "ok"))):
        for key in ((role, state), (role, None), (None, None)):
            acc = out.setdefault(key, [0, 0])
            acc[0] += n
            acc[1] += ok
    return out


def at_least(probabilities: list[float], n: int) -> float:
    """P(at least n of independent events with these probabilities happen): the Poisson binomial tail."""
    if n <= 0:
        return 1.0
    dist = [1.0] + [0.0] * n  # dist[j]: P(exactly j so far) for j < n; dist[n]: P(n or more)
    for p in probabilities:
        dist[n] += dist[n - 1] * p
        for j in range(n - 1, 0, -1):
            dist[j] = dist[j] * (1 - p) + dist[j - 1] * p
        dist[0] *= 1 - p
    return min(max(dist[n], 0.0), 1.0)


def _fill(lake: Lake, inp: FillProbability) -> dict[str, Any]:
    found = _jobs(lake, JobOrders(dataset=inp.dataset, status=None, ids=inp.job_order_ids, corpora=inp.corpora,
                                  limit=len(inp.job_order_ids)))
    history = _history(lake, inp.dataset, inp.placements)
    threshold = lake.settings.relevance_threshold
    results = []
    for job in found["job_orders"]:
        role, state = job["role"], job["state"]
        scope, (n, ok) = next(((name, history[key]) for name, key in
                               (("role and state", (role, state)), ("role", (role, None)), ("all", (None, None)))
                               if history.get(key, [0])[0] >= MIN_HISTORY), ("none", (0, 0)))
        rate = (ok + 1) / (n + 2)
        hits = lake.retrieval.matrix_search(**job["search"]).results if job["search"] else []
        quality = [min(max((h.score - threshold) / (1 - threshold), 0.0), 1.0) for h in hits]
        chances = [q * rate for q in quality]
        headcount = int(job["headcount"] or 0)
        results.append({
            "job_order_id": job["id"], "probability": round(at_least(chances, headcount), 4), "headcount": headcount,
            "matches": len(hits), "expected_fills": round(sum(chances), 3),
            "history": {"scope": scope, "placements": n, "successes": ok, "success_rate": round(rate, 4)}})
    seen = {r["job_order_id"] for r in results}
    return {"results": results, "missing_ids": [i for i in inp.job_order_ids if i not in seen]}


OPS = [
    Op("dataset.rows", "A page of a dataset's rows (ordered by all columns), with the total row count.", DatasetRows,
       _dataset_rows, output=dict[str, Any], count=lambda d: len(d["rows"])),
    Op("corpus.rows", "A page of a corpus's rows (id, text, metadata) in insertion order, with the total.", CorpusRows,
       _corpus_rows, output=dict[str, Any], count=lambda d: len(d["rows"])),
    Op("staffing.job_orders", "Job orders (open by default) with the matrix.search arguments that match them.",
       JobOrders, _jobs, output=dict[str, Any], count=lambda d: len(d["job_orders"])),
    Op("staffing.fill_probability", "Probability of filling each job order from its match scores and past "
       "placements.", FillProbability, _fill, output=dict[str, Any], count=lambda d: len(d["results"])),
]
