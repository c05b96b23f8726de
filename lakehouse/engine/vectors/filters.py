"""Hybrid search with a SQL `where` over the corpus's source dataset, and source rows for hits.

`where` comes from users: DuckDB's parser must read it as ONE expression whose functions are on the
read-only allow list (sql_policy.check_expression: no subqueries, no tables, none of the engine's
per-row model calls); the statement around it is checked again as a whole, then run on the sandboxed
read-only instance within `query_timeout_s`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakehouse.engine.names import check_name, quote_ident
from lakehouse.engine.safe_sql import read_arrow
from lakehouse.engine.sql_policy import check_expression
from lakehouse.errors import InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.vectors.engine import VectorEngine
    from lakehouse.engine.vectors.hits import Hit


def check_where(where: str) -> str:
    """The expression, if it is a single allowed SQL expression (module docstring)."""
    return check_expression(where, what="where", code="where_not_allowed")


def source_dataset(vectors: VectorEngine, corpus: str) -> tuple[str, str]:
    """(dataset, id column) a corpus was built from; InvalidInput for SQL-built corpora."""
    meta = vectors.state(corpus).meta
    dataset = meta["source"].get("dataset")
    if not dataset:
        raise InvalidInput(f"corpus {corpus!r} was built from SQL, not a dataset: it has no rows to filter with where",
                           code="where_needs_dataset")
    return check_name(dataset), meta["source"]["id"]


def ids_where(vectors: VectorEngine, corpus: str, where: str) -> list[Any]:
    dataset, id_col = source_dataset(vectors, corpus)
    cond = check_where(where)  # on lines of its own: a `--` comment in it ends with it
    tbl = read_arrow(vectors.ctx, f"SELECT list({quote_ident(id_col)}) AS ids FROM lake.main.{dataset} WHERE (\n{cond}\n)")
    return tbl.column("ids")[0].as_py() or []


def with_rows(vectors: VectorEngine, corpus: str, hits: list[Hit]) -> list[dict[str, Any]]:
    """Hits as dicts carrying the source row's fields (dataset corpora) or text + metadata."""
    if not hits:
        return []
    meta = vectors.state(corpus).meta
    dataset, id_col = meta["source"].get("dataset"), meta["source"]["id"]
    out = [h.to_dict() for h in hits]
    ids = [h.id for h in hits]
    if dataset:
        ident = quote_ident(id_col)
        tbl = read_arrow(vectors.ctx, f"SELECT * FROM lake.main.{check_name(dataset)} WHERE {ident}::VARCHAR IN "
                         "(SELECT unnest(?))", [ids], check=False)
        rows = {str(r[id_col]): r for r in tbl.to_pylist()}
        for item in out:
            item["row"] = rows.get(item["id"])
    else:
        found = vectors.rows(corpus, ids)
        for item in out:
            item.update(found.get(item["id"], {}))
    return out
