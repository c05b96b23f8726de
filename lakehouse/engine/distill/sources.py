"""Where evidence comes from: the lake's own records, read into the builders of evidence.py.

    playbook_records(cur, since)        every recorded playbook outcome (lh.playbooks)
    workflow_records(cur, since)        every finished workflow run with its nodes (lh.workflow_runs / _nodes)
    op_records(ops, private)            observer ops (dicts, as Observer.query gives them) that carry a query
    rag_records(items)                  rag.ask results handed in: {result, outcome?, rating?, retrieved?}

The lake's sources return `Collected(records, skipped)`: a row the builders refuse (a hand-edited table, a node
whose output is not JSON) is skipped with its reason, never the whole collection. What a caller hands in
(`rag_records`) is refused whole when an item is bad.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb

from lakehouse.engine import catalog
from lakehouse.engine.distill.evidence import (
    EvidenceRecord,
    from_observed_op,
    from_playbook_entry,
    from_rag_answer,
    from_workflow_run,
)
from lakehouse.errors import InvalidInput


@dataclasses.dataclass
class Collected:
    records: list[EvidenceRecord] = dataclasses.field(default_factory=list)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def add(self, source: str, build: Any, *args: Any, **kwargs: Any) -> None:
        try:
            self.records.append(build(*args, **kwargs))
        except InvalidInput as exc:
            self.skipped.append({"source": source, "reason": exc.message})

    def extend(self, other: Collected) -> None:
        self.records += other.records
        self.skipped += other.skipped


_PLAYBOOK = ("id", "query", "corpus", "answer_id", "answer_text", "outcome", "recorded_at")


def playbook_records(cur: duckdb.DuckDBPyConnection, since: str | None = None) -> Collected:
    out = Collected()
    if not catalog.table_exists(cur, "lh", "playbooks"):
        return out
    rows = cur.execute(f"SELECT {', '.join(_PLAYBOOK)} FROM lake.lh.playbooks "
                       "WHERE ?::TIMESTAMP IS NULL OR recorded_at >= ?::TIMESTAMP ORDER BY recorded_at, id",
                       [since, since]).fetchall()
    for row in rows:
        entry = dict(zip(_PLAYBOOK, row))
        out.add(f"playbook:{entry['id']}", from_playbook_entry, entry)
    return out


def workflow_records(cur: duckdb.DuckDBPyConnection, since: str | None = None) -> Collected:
    """Finished runs (a running one has no outcome yet), nodes in the order they started."""
    out = Collected()
    if not catalog.table_exists(cur, "lh", "workflow_runs"):
        return out
    runs = cur.execute("SELECT run_id, workflow, status, input, started_at, finished_at FROM lake.lh.workflow_runs "
                       "WHERE status <> 'running' AND (?::TIMESTAMP IS NULL OR started_at >= ?::TIMESTAMP) "
                       "ORDER BY started_at, run_id", [since, since]).fetchall()
    if not runs:
        return out
    nodes: dict[str, list[dict[str, Any]]] = {}
    for run_id, node_id, status, inp, output, started, finished in cur.execute(
            "SELECT run_id, node_id, status, input, output, started_at, finished_at FROM lake.lh.workflow_nodes "
            "WHERE list_contains(?, run_id) ORDER BY run_id, started_at NULLS LAST, node_id",
            [[r[0] for r in runs]]).fetchall():
        nodes.setdefault(run_id, []).append({
            "node": node_id, "status": status, "input": _object(inp), "output": _object(output),
            "duration_ms": _ms(started, finished)})
    for run_id, workflow, status, inp, started, finished in runs:
        run = {"id": run_id, "workflow": workflow, "status": status, "input": _object(inp), "started_at": started,
               "duration_ms": _ms(started, finished)}
        out.add(f"workflow:{run_id}", from_workflow_run, run, nodes.get(run_id, []))
    return out


def op_records(ops: Iterable[Mapping[str, Any]], private: Mapping[str, Sequence[str]]) -> Collected:
    """Ops whose recorded input has a query text. Fields an op records by size only (`private`: a prompt, a
    question) are dropped first: their `<n chars>` stand-in is no query."""
    out = Collected()
    for op in ops:
        hidden = set(private.get(str(op.get("op")), ()))
        inp = op.get("input")
        if hidden and isinstance(inp, Mapping):
            op = {**op, "input": {k: v for k, v in inp.items() if k not in hidden}}
        found = Collected()
        found.add(f"op:{op.get('id')}", from_observed_op, op)
        out.skipped += found.skipped
        out.records += [r for r in found.records if r.query is not None]
    return out


def rag_records(items: Sequence[Mapping[str, Any]]) -> list[EvidenceRecord]:
    """rag.ask results handed in by a caller, {result: <what rag.ask returned>, outcome?, rating?, retrieved?,
    created_at?}: the caller's own input, so a bad item is refused (InvalidInput naming it), not skipped."""
    out = []
    for i, item in enumerate(items):
        extra = sorted(set(item) - {"result", "outcome", "rating", "retrieved", "created_at"}) if isinstance(
            item, Mapping) else []
        if not isinstance(item, Mapping) or extra or "result" not in item:
            raise InvalidInput(f"rag_answers[{i}] must be {{result, outcome?, rating?, retrieved?, created_at?}}"
                               + (f"; unknown key {extra[0]!r}" if extra else ""), code="invalid_evidence",
                               field="rag_answers")
        try:
            out.append(from_rag_answer(item["result"], retrieved=item.get("retrieved"), outcome=item.get("outcome"),
                                       rating=item.get("rating"), created_at=item.get("created_at")))
        except InvalidInput as exc:
            raise InvalidInput(f"rag_answers[{i}]: {exc.message}", code=exc.code, field="rag_answers") from None
    return out


def _object(text: str | None) -> dict[str, Any]:
    """A JSON column as an object: a node's text output is its answer (`text`), other shapes are not evidence."""
    try:
        value = json.loads(text) if text else None
    except ValueError:  # written by hand, not by the run store
        return {}
    if isinstance(value, str):
        return {"text": value}
    return value if isinstance(value, dict) else {}


def _ms(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return None if start is None or end is None else max((end - start).total_seconds() * 1000, 0.0)
