"""The multi-process stress run (benchmarks/stress.py) on the embedded default, a SQLite catalog and local data: two
writer and two reader processes, zero errors and zero lost rows. The PostgreSQL + S3 run is in test_scale_out.py;
the full 60 s runs are `python -m benchmarks stress --seconds 60 [--catalog postgres]`."""

from __future__ import annotations

from benchmarks import stress

SECONDS = 15.0


def test_two_writers_two_readers_on_sqlite() -> None:
    result = stress.run(SECONDS, writers=2, readers=2, batch=50)
    assert result["error_samples"] == [] and result["errors"] == 0
    assert result["rows_written"] > 0 and result["reads"] > 0
    assert result["lost_rows"] == 0 and result["rows_seen"] == result["rows_written"]
    assert result["corpus_rows"] == result["corpus_keys"] == result["rows_written"]
    assert result["all_passed"]
