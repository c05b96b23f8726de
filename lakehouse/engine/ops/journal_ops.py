"""Operations on the lake's history: journal (what each snapshot did) and dataset.changes (a dataset's change feed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from lakehouse.engine import changes, journal
from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.types import CorpusName, DatasetName
from lakehouse.errors import map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake


class JournalQuery(Input):
    dataset: DatasetName | None = Field(None, description="only changes of this dataset")
    corpus: CorpusName | None = Field(None, description="only changes of this corpus")
    op: str | None = Field(None, description="only changes made by this operation, e.g. dataset.ingest")
    since_snapshot: int | None = Field(None, ge=0, description="only snapshots after this one")
    limit: int = Field(100, ge=1, le=10_000)


def _journal(lake: Lake, inp: JournalQuery) -> list[dict[str, Any]]:
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        return journal.entries(cur, dataset=inp.dataset, corpus=inp.corpus, op=inp.op,
                               since_snapshot=inp.since_snapshot, limit=inp.limit)


class ChangesQuery(Input):
    dataset: DatasetName
    since_snapshot: int = Field(0, ge=0, description="changes made after this snapshot")
    until_snapshot: int | None = Field(None, ge=0, description="up to and including this snapshot (default: latest)")
    limit: int = Field(10_000, ge=1, le=1_000_000, description="changes returned at most (truncated says so)")


def _changes(lake: Lake, inp: ChangesQuery) -> dict[str, Any]:
    with lake.ctx.fresh_cursor() as cur, map_duckdb_errors():
        return changes.changes(cur, inp.dataset, inp.since_snapshot, inp.until_snapshot, inp.limit)


OPS = [
    Op("journal", "The lake's history, newest first: each snapshot with the op, dataset or corpus, rows added and "
       "removed, and who (origin, profile).", JournalQuery, _journal, output=list[dict[str, Any]],
       http="GET /v1/journal", sql="journal(dataset := NULL, corpus := NULL, op := NULL, since_snapshot := NULL)",
       cli="lakehouse journal", count=len),
    Op("dataset.changes", "Rows inserted, deleted and updated in a dataset since a snapshot (DuckLake's change feed; "
       "merge datasets by key).", ChangesQuery, _changes, output=dict[str, Any],
       http="GET /v1/datasets/<dataset>/changes", sql="dataset_changes(dataset, since_snapshot)",
       count=lambda d: len(d["changes"]), summary=lambda d: {k: d[k] for k in ("from_snapshot", "to_snapshot",
                                                                                 "truncated")}),
]
