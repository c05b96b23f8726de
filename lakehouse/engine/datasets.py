"""Listing, describing and dropping datasets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine import catalog, journal
from lakehouse.engine.names import check_name, sql_string
from lakehouse.errors import NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext


def list_datasets(ctx: EngineContext) -> list[dict[str, Any]]:
    with ctx.fresh_cursor() as cur, map_duckdb_errors():
        rows = cur.execute(
            "SELECT d.name, d.kind, d.key, d.updated_at, "
            "(SELECT count(*) FROM lake.lh.ingests i WHERE i.dataset = d.name) AS ingests "
            "FROM lake.lh.datasets d ORDER BY d.name"
        ).fetchall()
        present = {r[0] for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name='lake' AND schema_name='main' "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name='lake' AND schema_name='main'"
        ).fetchall()}
        listed = [r for r in rows if r[0] in present]
        # One statement for every count: each statement on a lake cursor pays a DuckLake transaction (~5 ms).
        counts = dict(cur.execute(" UNION ALL ".join(
            f"SELECT {sql_string(r[0])}, count(*) FROM lake.main.{check_name(r[0])}" for r in listed)).fetchall()
        ) if listed else {}
    return [{"name": name, "kind": kind, "key": key, "rows": counts[name], "ingests": ingests, "updated_at": updated}
            for name, kind, key, updated, ingests in listed]


def describe_dataset(ctx: EngineContext, name: str) -> dict[str, Any]:
    with ctx.fresh_cursor() as cur, map_duckdb_errors():
        row = catalog.dataset_row(cur, name)
        if row is None or not (catalog.table_exists(cur, "main", name) or catalog.view_exists(cur, "main", name)):
            raise NotFound(f"no dataset named {name!r}", code="dataset_not_found")
        schema = [{"name": r[0], "type": r[1], "nullable": r[2] == "YES"}
                  for r in cur.execute(f"DESCRIBE lake.main.{name}").fetchall()]
        count = cur.execute(f"SELECT count(*) FROM lake.main.{name}").fetchone()[0]
        history = cur.execute(
            "SELECT i.id, i.mode, i.rows, i.content_sha256, i.source, i.ingested_at, s.snapshot_id "
            "FROM lake.lh.ingests i LEFT JOIN lake.snapshots() s "
            "ON s.commit_extra_info = json_object('ingest_id', i.id)::VARCHAR "
            "WHERE i.dataset = ? ORDER BY i.ingested_at", [name],
        ).fetchall()
    return {
        "name": name, "kind": row["kind"], "key": row["key"], "columns": schema, "rows": count,
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "snapshots": [{"ingest_id": h[0], "mode": h[1], "rows": h[2], "content_sha256": h[3], "source": h[4],
                       "ingested_at": h[5], "snapshot_id": h[6]} for h in history],
    }


def drop_dataset(ctx: EngineContext, name: str) -> None:
    with ctx.write_lock, ctx.fresh_cursor() as cur, map_duckdb_errors():
        row = catalog.dataset_row(cur, name)
        if row is None:
            raise NotFound(f"no dataset named {name!r}", code="dataset_not_found")

        def drop(cur: duckdb.DuckDBPyConnection) -> None:
            present = catalog.table_exists(cur, "main", name) or catalog.view_exists(cur, "main", name)
            rows = cur.execute(f"SELECT count(*) FROM lake.main.{name}").fetchone()[0] if present else 0
            journal.note(dataset=name, rows_removed=rows)
            if row["kind"] == "merge":
                cur.execute(f"DROP VIEW IF EXISTS lake.main.{name}")
                cur.execute(f"DROP TABLE IF EXISTS lake.lh_store.{name}__base")
                cur.execute(f"DROP TABLE IF EXISTS lake.lh_store.{name}__delta")
            else:
                cur.execute(f"DROP TABLE IF EXISTS lake.main.{name}")
            cur.execute("DELETE FROM lake.lh.datasets WHERE name = ?", [name])
            cur.execute("DELETE FROM lake.lh.ingests WHERE dataset = ?", [name])

        ctx.transaction(cur, drop)
