"""History functions behind the `journal` and `dataset_changes` macros.

    SELECT * FROM journal(dataset := 'workers');          -- what each snapshot did, newest first
    SELECT * FROM dataset_changes('workers', 12);          -- rows changed after snapshot 12
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.engine.ops import entrance
from lakehouse.udfs._errors import udf_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

JOURNAL_SQL = ("STRUCT(snapshot_id BIGINT, committed_at TIMESTAMP, op VARCHAR, dataset VARCHAR, corpus VARCHAR, "
               "rows_added BIGINT, rows_removed BIGINT, origin VARCHAR, profile VARCHAR, workflow VARCHAR, "
               "run_id VARCHAR, details VARCHAR, message VARCHAR, changes VARCHAR)[]")
CHANGES_SQL = "STRUCT(snapshot_id BIGINT, change_type VARCHAR, \"row\" VARCHAR)[]"


def register(con: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> None:
    call = lake.ops.call

    @udf_errors
    def lh_journal(profile: str | None, dataset: str | None, corpus: str | None, op: str | None, since: int | None,
                   limit: int | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            return call("journal", dataset=dataset, corpus=corpus, op=op, since_snapshot=since,
                        limit=100 if limit is None else limit)

    @udf_errors
    def lh_dataset_changes(profile: str | None, dataset: str, since: int | None, until: int | None,
                           limit: int | None) -> list[dict[str, Any]]:
        with entrance("sql", read_only=read_only, profile=profile):
            out = call("dataset.changes", dataset=dataset, since_snapshot=0 if since is None else since,
                       until_snapshot=until, limit=10_000 if limit is None else limit)
        return [{"snapshot_id": c["snapshot_id"], "change_type": c["change_type"],
                 "row": json.dumps(c["row"], default=str)} for c in out["changes"]]

    con.create_function("lh_journal", lh_journal, ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT"], JOURNAL_SQL,
                        type="native", null_handling="special", side_effects=True)
    con.create_function("lh_dataset_changes", lh_dataset_changes, ["VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "BIGINT"],
                        CHANGES_SQL, type="native", null_handling="special", side_effects=True)
