"""Hybrid search with a SQL `where` over the corpus's source dataset, and source rows for hits.

`where` comes from users: it is parsed with sqlglot as ONE boolean expression, with no subqueries
and no functions that read files or other databases, then run on the sandboxed read-only instance
within `query_timeout_s`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from lakehouse.engine.names import check_name, quote_ident
from lakehouse.engine.safe_sql import FORBIDDEN_FUNCS, read_arrow
from lakehouse.errors import Forbidden, InvalidInput

if TYPE_CHECKING:
    from lakehouse.engine.vectors.engine import VectorEngine
    from lakehouse.engine.vectors.hits import Hit


def check_where(where: str) -> str:
    """The expression, normalised by sqlglot, if it is a single safe boolean expression."""
    if not isinstance(where, str) or not where.strip():
        raise InvalidInput("where must be a non-empty SQL expression", code="invalid_where")
    try:
        tree = sqlglot.parse_one(where, read="duckdb", into=exp.Condition)
    except (sqlglot.errors.SqlglotError, RecursionError) as exc:
        raise InvalidInput(f"where is not a single SQL expression: {str(exc).splitlines()[0][:200]}",
                           code="invalid_where") from exc
    for node in tree.walk():
        if isinstance(node, (exp.Subquery, exp.Select, exp.Query, exp.Table)):
            raise Forbidden("where may not contain subqueries or table references", code="where_not_allowed")
        if isinstance(node, exp.Func):
            name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            if FORBIDDEN_FUNCS.match(name or ""):
                raise Forbidden(f"function {name.lower()}() is not allowed in where", code="where_not_allowed")
    return tree.sql(dialect="duckdb")


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
    cond = check_where(where)
    tbl = read_arrow(vectors.ctx, f"SELECT list({quote_ident(id_col)}) AS ids FROM lake.main.{dataset} WHERE {cond}")
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
