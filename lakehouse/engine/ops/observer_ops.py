"""Operations that read what happened: observer.ops, observer.stats, storage.errors, hnsw.trials."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field

from lakehouse.engine.ops import scope
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.types import CorpusName
from lakehouse.engine.vectors import store
from lakehouse.errors import InvalidInput, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _timestamp(v: str) -> str:
    """An ISO 8601 time, as the UTC text ops carry (`2026-11-27T09:30:00.000`)."""
    try:
        t = dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{v!r} is not an ISO 8601 time such as 2026-11-27T09:30:00Z", code="invalid_time") from None
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return t.isoformat(timespec="milliseconds")


def window_seconds(v: str) -> float:
    m = _WINDOW.match(v.strip().lower())
    if not m or float(m.group(1)) <= 0:
        raise InvalidInput(f"window {v!r} must be a positive duration such as 30s, 15m, 1h or 7d", code="invalid_window")
    return float(m.group(1)) * _UNIT[m.group(2)]


Timestamp = Annotated[str, AfterValidator(_timestamp)]
Window = Annotated[str, AfterValidator(lambda v: (window_seconds(v), v)[1])]


class OpsQuery(Input):
    op: str | None = Field(None, description="one op name, e.g. vectors.search")
    origin: str | None = Field(None, description="python, sql, http, cli, mcp, ui or workflow")
    exclude_origin: str | None = Field(None, description="leave out this origin (the web UI's own polling: ui)")
    status: Literal["ok", "error"] | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    limit: int = Field(100, ge=1, le=10_000)


class StatsQuery(Input):
    window: Window = Field("1h", description="how far back: 30s, 15m, 1h, 7d")


class JournalQuery(Input):
    kind: Literal["ingest_failed", "sidecar_missing", "sidecar_corrupt", "write_error", "rescued", "drift_alert"] | None = None
    since: Timestamp | None = None
    limit: int = Field(100, ge=1, le=10_000)


class TrialsQuery(Input):
    corpus: CorpusName | None = None
    limit: int = Field(100, ge=1, le=10_000)


def _trials(lake: Lake, inp: TrialsQuery) -> list[dict[str, Any]]:
    where, params = ("WHERE corpus = ?", [inp.corpus]) if inp.corpus else ("", [])
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        tbl = store.fetch_table(cur, "SELECT recorded_at, corpus, generation, event, rows, params::JSON AS params, "
                                f"build_s, recall_at_10, sample FROM lake.lh.hnsw_trials {where} "
                                f"ORDER BY recorded_at DESC, generation DESC LIMIT {int(inp.limit)}", params)
    rows = tbl.to_pylist()
    for r in rows:
        r["params"] = json.loads(r["params"]) if r["params"] else None
    return rows


def _own() -> str | None:
    """A profile sees only its own ops (None: an unscoped caller sees every op)."""
    p = scope.profile()
    return None if p is None else p.name


OPS = [
    Op("observer.ops", "Recorded operations, newest first, filtered by op, origin, status and time.", OpsQuery,
       lambda lake, inp: lake.observer.query(op=inp.op, origin=inp.origin, status=inp.status, since=inp.since,
                                             until=inp.until, limit=inp.limit, exclude_origin=inp.exclude_origin,
                                             profile=_own()),
       output=list[dict[str, Any]], http="GET /v1/observer/ops", cli="lakehouse ops tail",
       count=len),
    Op("observer.stats", "Per op and origin over a window: count, errors, error rate, p50/p95/p99 ms.", StatsQuery,
       lambda lake, inp: {"window": inp.window, "ops": lake.observer.stats(window_seconds(inp.window))},
       output=dict[str, Any], http="GET /v1/observer/stats", cli="lakehouse ops stats",
       count=lambda d: len(d["ops"])),
    Op("storage.errors", "Failures that touched storage (failed ingests, damaged sidecars rebuilt, write errors) "
       "and drift alerts.",
       JournalQuery, lambda lake, inp: lake.ctx.journal.recent(kind=inp.kind, since=inp.since, limit=inp.limit),
       output=list[dict[str, Any]], http="GET /storage/errors", count=len),
    Op("hnsw.trials", "Index builds, swaps and rollbacks with build seconds and measured recall@10.", TrialsQuery,
       _trials, output=list[dict[str, Any]], http="GET /hnsw/trials", count=len),
]
