"""Playbook drift: does today's retrieval still find the answers recorded as having worked?

Each recorded success (`lh.playbooks`, outcome +1) is a (query, corpus, answer) triple. Its query is run again
through today's retrieval of that corpus (`search(query, corpus) -> ranked ids`, the matrix search pipeline
without playbook boosts, which would put the recorded answer back by construction); the recorded answer
missing from the top k is drift. A failure recorded later for the same (query, corpus, answer) retires the
success: that answer is no longer expected.

    playbook_drift(recorded_successes(cur), search, k=10)
    -> {"k": 10, "total": 12, "drifted": 2,
        "corpora": [{"corpus": "workers", "total": 9, "drifted": 2}, ...],          # by corpus name
        "playbooks": [{"id", "corpus", "query", "answer_id", "recorded_at", "found", "rank", "error"}, ...]}

`playbooks` are oldest first (recorded_at, then id); `rank` is the answer's 1-based rank when found. A query
that cannot run any more (its corpus was dropped) is drift with the error's code in `error`. A query is
searched once however many answers were recorded for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb

from lakehouse.engine import catalog
from lakehouse.engine.matrix.playbooks import normalise_query
from lakehouse.errors import LakehouseError

Search = Callable[[str, str], Sequence[str]]
_FIELDS = ("id", "query", "corpus", "answer_id", "outcome", "recorded_at")


def recorded_successes(cur: duckdb.DuckDBPyConnection, corpus: str | None = None,
                       limit: int | None = None) -> list[dict[str, Any]]:
    """The recorded successes still in force, oldest first (at most `limit`, the oldest kept)."""
    if not catalog.table_exists(cur, "lh", "playbooks"):
        return []
    where, params = ("WHERE corpus = ?", [corpus]) if corpus is not None else ("", [])
    rows = [dict(zip(_FIELDS, r)) for r in cur.execute(
        f"SELECT {', '.join(_FIELDS)} FROM lake.lh.playbooks {where} ORDER BY recorded_at, id", params).fetchall()]
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:  # in time order: the last outcome per (query, corpus, answer) decides whether it is in force
        latest[(normalise_query(row["query"]), row["corpus"], row["answer_id"])] = row
    retired = {key for key, row in latest.items() if row["outcome"] < 0}
    kept = [r for r in rows if r["outcome"] > 0
            and (normalise_query(r["query"]), r["corpus"], r["answer_id"]) not in retired]
    return kept[:limit] if limit is not None else kept


def playbook_drift(entries: Sequence[Mapping[str, Any]], search: Search, k: int) -> dict[str, Any]:
    """See the module docstring. `entries` are {id, query, corpus, answer_id, recorded_at} dicts."""
    results: dict[tuple[str, str], tuple[list[str], str | None]] = {}
    playbooks = []
    for entry in sorted(entries, key=lambda e: (_stamp(e["recorded_at"]), e["id"])):
        key = (entry["query"], entry["corpus"])
        if key not in results:
            try:
                results[key] = ([str(i) for i in search(entry["query"], entry["corpus"])][:k], None)
            except LakehouseError as exc:
                results[key] = ([], exc.code)
        ranked, error = results[key]
        answer = str(entry["answer_id"])
        rank = ranked.index(answer) + 1 if answer in ranked else None
        playbooks.append({"id": entry["id"], "corpus": entry["corpus"], "query": entry["query"], "answer_id": answer,
                          "recorded_at": _stamp(entry["recorded_at"]), "found": rank is not None, "rank": rank,
                          "error": error})
    corpora: dict[str, dict[str, Any]] = {}
    for p in playbooks:
        c = corpora.setdefault(p["corpus"], {"corpus": p["corpus"], "total": 0, "drifted": 0})
        c["total"] += 1
        c["drifted"] += not p["found"]
    return {"k": k, "total": len(playbooks), "drifted": sum(not p["found"] for p in playbooks),
            "corpora": [corpora[name] for name in sorted(corpora)], "playbooks": playbooks}


def _stamp(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)
