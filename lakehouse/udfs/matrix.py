"""Matrix functions behind the `matrix_search` and `playbook_lookup` macros.

    SELECT * FROM matrix_search('forklift operator OSHA-10', corpora := ['workers', 'candidates'],
                                metadata_filter := {'state': 'IL'}, use_playbook := true);
    SELECT * FROM playbook_lookup('forklift operator in Joliet', 5);
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.ops import entrance
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

MATRIX_SQL = ("STRUCT(rank BIGINT, corpus VARCHAR, id VARCHAR, score DOUBLE, text VARCHAR, metadata VARCHAR, "
              "source VARCHAR, relevance DOUBLE, evidence VARCHAR)[]")
PLAYBOOK_SQL = ("STRUCT(id VARCHAR, query VARCHAR, corpus VARCHAR, answer_id VARCHAR, answer_text VARCHAR, "
                "outcome INTEGER, similarity DOUBLE, recorded_at TIMESTAMP)[]")


def _filter(raw: str | None) -> Any:
    """The macro sends to_json(metadata_filter): a JSON object, or a JSON string holding one."""
    if raw is None:
        return None
    return json.loads(raw)  # a str result is JSON text itself: parse_filter reads it


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    call = lake.ops.call

    # native UDFs: one call per query (DuckDB's arrow round trip would cost more than the search)
    @udf_errors
    def lh_matrix_search(profile: str | None, query: str, corpora: list[str] | None, k: int | None, top: int | None,
                         flt: str | None,
                         use_playbook: bool | None, model: str | None, mode: str | None, relevance: bool | None,
                         force_mode: str | None, threshold: float | None, where: str | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            res = call("matrix.search", query=query, corpora=corpora, k_per_corpus=6 if k is None else k,
                       top=8 if top is None else top, metadata_filter=_filter(flt), use_playbook=bool(use_playbook),
                       model=model, mode=mode, relevance=relevance, force_mode=force_mode, threshold=threshold,
                       where=where)
        return [{"rank": h.rank, "corpus": h.corpus, "id": h.id, "score": h.score, "text": h.text,
                 "metadata": json.dumps(h.metadata, default=str), "source": h.source, "relevance": h.relevance,
                 "evidence": None if h.evidence is None else json.dumps(h.evidence, default=str)}
                for h in res.results]

    @udf_errors
    def lh_playbook_lookup(profile: str | None, query: str, k: int) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            found = call("playbook.lookup", query=query, k=k)["results"]
        return [{"id": e["id"], "query": e["query"], "corpus": e["corpus"], "answer_id": e["answer_id"],
                 "answer_text": e["answer_text"], "outcome": e["outcome"], "similarity": e["similarity"],
                 "recorded_at": datetime.datetime.fromisoformat(e["recorded_at"])} for e in found]

    con.create_function("lh_matrix_search", lh_matrix_search,
                        ["VARCHAR", "VARCHAR", "VARCHAR[]", "BIGINT", "BIGINT", "VARCHAR", "BOOLEAN", "VARCHAR", "VARCHAR",
                         "BOOLEAN", "VARCHAR", "DOUBLE", "VARCHAR"], MATRIX_SQL, type="native",
                        null_handling="special", side_effects=True)
    con.create_function("lh_playbook_lookup", lh_playbook_lookup, ["VARCHAR", "VARCHAR", "BIGINT"], PLAYBOOK_SQL,
                        type="native", null_handling="special", side_effects=True)
