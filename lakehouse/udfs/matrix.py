"""Matrix functions behind the `matrix_search` and `playbook_lookup` macros.

    SELECT * FROM matrix_search('forklift operator OSHA-10', corpora := ['workers', 'candidates'],
                                metadata_filter := {'state': 'IL'}, use_playbook := true);
    SELECT * FROM playbook_lookup('forklift operator in Joliet', 5);
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

MATRIX_HIT = pa.struct([("rank", pa.int64()), ("corpus", pa.string()), ("id", pa.string()), ("score", pa.float64()),
                        ("text", pa.string()), ("metadata", pa.string()), ("source", pa.string())])
MATRIX_SQL = ("STRUCT(rank BIGINT, corpus VARCHAR, id VARCHAR, score DOUBLE, text VARCHAR, metadata VARCHAR, "
              "source VARCHAR)[]")
PLAYBOOK_HIT = pa.struct([("id", pa.string()), ("query", pa.string()), ("corpus", pa.string()),
                          ("answer_id", pa.string()), ("answer_text", pa.string()), ("outcome", pa.int32()),
                          ("similarity", pa.float64()), ("recorded_at", pa.timestamp("us"))])
PLAYBOOK_SQL = ("STRUCT(id VARCHAR, query VARCHAR, corpus VARCHAR, answer_id VARCHAR, answer_text VARCHAR, "
                "outcome INTEGER, similarity DOUBLE, recorded_at TIMESTAMP)[]")


def _filter(raw: str | None) -> Any:
    """The macro sends to_json(metadata_filter): a JSON object, or a JSON string holding one."""
    if raw is None:
        return None
    return json.loads(raw)  # a str result is JSON text itself: parse_filter reads it


def register(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    @udf_errors
    def lh_matrix_search(query: pa.Array, corpora: pa.Array, k: pa.Array, top: pa.Array, flt: pa.Array,
                         use_playbook: pa.Array, model: pa.Array, mode: pa.Array, relevance: pa.Array) -> pa.Array:
        out = []
        for i in range(len(query)):
            res = lake.matrix_search(
                query[i].as_py(), corpora[i].as_py(), k_per_corpus=k[i].as_py() or 6, top=top[i].as_py() or 8,
                metadata_filter=_filter(flt[i].as_py()), use_playbook=bool(use_playbook[i].as_py()),
                model=model[i].as_py(), mode=mode[i].as_py(), relevance=relevance[i].as_py(), origin="sql")
            out.append([{"rank": h.rank, "corpus": h.corpus, "id": h.id, "score": h.score, "text": h.text,
                         "metadata": json.dumps(h.metadata, default=str), "source": h.source} for h in res.results])
        return pa.array(out, type=pa.list_(MATRIX_HIT))

    @udf_errors
    def lh_playbook_lookup(query: pa.Array, k: pa.Array) -> pa.Array:
        out = []
        for i in range(len(query)):
            vec = lake.vectors.embedder(lake.settings.embedder).embed_one(query[i].as_py())
            found = lake.playbooks.similar(vec, k[i].as_py())
            out.append([{"id": e.id, "query": e.query, "corpus": e.corpus, "answer_id": e.answer_id,
                         "answer_text": e.answer_text, "outcome": e.outcome, "similarity": sim,
                         "recorded_at": e.recorded_at} for e, sim in found])
        return pa.array(out, type=pa.list_(PLAYBOOK_HIT))

    con.create_function("lh_matrix_search", lh_matrix_search,
                        ["VARCHAR", "VARCHAR[]", "BIGINT", "BIGINT", "VARCHAR", "BOOLEAN", "VARCHAR", "VARCHAR",
                         "BOOLEAN"], MATRIX_SQL, type="arrow", null_handling="special", side_effects=True)
    con.create_function("lh_playbook_lookup", lh_playbook_lookup, ["VARCHAR", "BIGINT"], PLAYBOOK_SQL,
                        type="arrow", null_handling="special", side_effects=True)
