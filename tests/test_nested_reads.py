"""An engine SQL function that reads (truth_check, a hybrid where through matrix_search, ...) called from a query on
the read-only path: DuckDB may run the function on the calling thread, whose query cursor is busy with that query.
Re-entering it waited forever (a hang seen in CI); such reads get a cursor of their own. One thread makes DuckDB run
every function on the calling thread, so the old code hangs every time; a child process keeps a hang from
stopping the suite."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import lakehouse

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
