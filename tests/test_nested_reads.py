"""An engine SQL function that reads (truth_check, a hybrid where through matrix_search, ...) called from a query on
the read-only path: DuckDB may run the function on the calling thread, whose query cursor is busy with that query.
Re-entering it waited forever (a hang seen in CI); such reads get a cursor of their own. One thread makes DuckDB run
every function on the calling thread, so the old code hangs every time; a child process keeps a hang from
stopping the suite."""

from __future__ import annotations

import gc
import multiprocessing
from pathlib import Path

import lakehouse
from lakehouse.engine import safe_sql
from lakehouse.engine.ops import entrance

TRUTH = '[[rule]]\nname = "ids_positive"\ndataset = "people"\nassert = "id > 0"\n'


def _nested(root: str) -> None:
    with lakehouse.open(root, embedder="hash", threads=1) as lake:
        lake.ingest(b"id,name\n1,Ann\n2,Bob\n", "people", filename="p.csv")
        for _ in range(5):
            assert lake.query("SELECT rule, status FROM truth_check($1)", [TRUTH]).rows == [["ids_positive", "passed"]]


def test_a_reading_sql_function_inside_a_query_does_not_wait_on_its_own_cursor(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("spawn").Process(target=_nested, args=(str(tmp_path / "lake"),))
    proc.start()
    proc.join(120)
    hung = proc.is_alive()
    if hung:
        proc.kill()
        proc.join()
    assert not hung and proc.exitcode == 0


def test_nested_reads_reuse_their_cursors_and_the_profile_follows_the_caller(tmp_path: Path) -> None:
    """A cursor per nested read cost ~4 ms to open (`USE lake` reads the catalog) and, for a profile's call, an entry
    held for ever in safe_sql's cursor -> profile map (a closed cursor each). The cursors are pooled now, the map is
    weak; a pooled cursor reused by a caller without a profile reads what that caller may read."""
    secret = '[[rule]]\nname = "s"\ndataset = "secrets"\nassert = "id > 0"\n'
    with lakehouse.open(tmp_path / "lake", embedder="hash", threads=1) as lake:
        lake.ingest(b"id,name\n1,Ann\n", "people", filename="p.csv")
        lake.ingest(b"id\n1\n", "secrets", filename="s.csv")
        lake.ops.call("profile.create", name="p1", datasets=["people"], corpora=[], access="read")
        snap = lake.journal(limit=1)[0]["snapshot_id"]
        for _ in range(10):
            with entrance(profile="p1"):
                assert lake.query("SELECT rule, status FROM truth_check($1)", [TRUTH]).rows == [["ids_positive",
                                                                                                  "passed"]]
                refused = lake.query("SELECT status, message FROM truth_check($1)", [secret]).rows
                assert refused[0][0] == "error" and "profile_forbidden" in refused[0][1]
                assert lake.query("SELECT count(*) FROM people", at_snapshot=snap).rows == [[1]]
            assert lake.query("SELECT status FROM truth_check($1)", [secret]).rows == [["passed"]]
            assert lake.query("SELECT count(*) FROM secrets", at_snapshot=snap).rows == [[1]]
        db = lake.ctx.db
        pooled = [*db._ro._spare, *(c for e in db.snapshots._entries.values() for c in e.instance._spare)]
        assert len(pooled) <= 3  # a nested cursor or two and one at the snapshot, not one per call
        gc.collect()
        assert len(safe_sql._BOUND) <= len(db._cursors) + len(pooled)  # none for a cursor that is gone
