"""Scale-out (issue 15): Lakehouse processes on one lake, a PostgreSQL catalog and an S3 data path (moto), each with
its own root folder. They ingest, add to one corpus and query at once; each sees the other's snapshots; no write
is lost; corpus keys never collide; the index generation one built is used by the other (its own copy of the
sidecar, made from the lake), without a new generation. Time travel works there too.

Under CI=true a missing PostgreSQL or moto is a failure, not a skip (.ci/run installs both).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import s3_server
from shared_lake import SharedServices, require_services

import lakehouse
from benchmarks import stress

require_services()

BATCHES, PER_BATCH = 6, 50


@pytest.fixture(scope="module")
def services() -> Iterator[SharedServices]:
    with SharedServices() as svc, svc.environment():
        yield svc


def _csv(tag: str, batch: int) -> bytes:
    return ("id,tag,batch\n" + "".join(f"{tag}-{batch}-{i},{tag},{batch}\n" for i in range(PER_BATCH))).encode()


def _node(root: str, where: dict[str, str], tag: str, other: str, barrier: Any, out: Any) -> None:
    """One node: write BATCHES batches to `events` and the `shared` corpus, reading as it goes; then, once every
    node has written, check that it sees all of the other node's writes."""
    seen: dict[str, Any] = {"tag": tag, "errors": []}
    try:
        # the corpus mirror asks the catalog for its latest snapshot at most every sync_interval_s (1 s by default):
        # a short interval, so the searches right after the other node's last commit must see it
        with lakehouse.open(root, embedder="hash", sync_interval_s=0.01, **where) as lake:
            seen["generation_at_open"] = lake.corpus("shared")["active_generation"]
            lake.vector_search("shared", "warm up", 1)  # holds the corpus: the index the parent built, copied here
            barrier.wait()
            counts = []
            for b in range(BATCHES):
                lake.ingest(_csv(tag, b), "events", format="csv", mode="append")
                lake.add_to_corpus("shared", [{"id": f"{tag}-{b}-{i}", "text": f"{tag} batch {b} row {i} words"}
                                              for i in range(PER_BATCH)])
                mine = lake.query("SELECT count(*) FROM events WHERE tag = ?", [tag]).rows[0][0]
                assert mine == (b + 1) * PER_BATCH, (tag, b, mine)  # a read sees every earlier commit of its own
                counts.append(lake.query("SELECT count(*) FROM events").rows[0][0])
            barrier.wait()  # every node has committed everything
            seen["monotonic"] = counts == sorted(counts)
            seen["events"] = lake.query("SELECT count(*) FROM events").rows[0][0]
            seen["theirs"] = lake.query("SELECT count(*) FROM events WHERE tag = ?", [other]).rows[0][0]
            hit = lake.vector_search("shared", f"{other} batch 3 row 7 words", 1, ids=[f"{other}-3-7"])[0]
            seen["their_row"] = (hit.id, round(hit.score, 4))
            seen["their_row_ann"] = f"{other}-3-7" in {h.id for h in lake.vector_search(
                "shared", f"{other} batch 3 row 7 words", 10)}
            seen["corpus_rows"] = lake.corpus("shared")["rows"]
            seen["generations"] = [g["generation"] for g in lake.corpus("shared")["generations"]]
            copy = Path(root) / "indexes" / "shared" / f"{seen['generation_at_open']}.usearch"
            seen["local_copy"] = copy.is_file() and copy.with_suffix(".sha256").is_file()
    except Exception as exc:  # reported to the parent, which fails the test with it
        seen["errors"].append(repr(exc))
        barrier.abort()
    out.put(seen)


def test_two_nodes_on_postgres_and_s3(services: SharedServices, tmp_path: Path) -> None:
    where = services.new_lake()
    seed = [{"id": f"s-{i}", "text": f"seed row {i} text"} for i in range(200)]
    with lakehouse.open(tmp_path / "first", embedder="hash", **where) as lake:
        lake.ingest(_csv("seed", 0), "events", format="csv")
        lake.create_corpus("shared", rows=seed)
        generation = lake.corpus("shared")["active_generation"]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_node, args=(str(tmp_path / tag), where, tag, other, barrier, out))
             for tag, other in (("a", "b"), ("b", "a"))]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    total = PER_BATCH * (1 + 2 * BATCHES)
    for seen in results:
        assert seen["errors"] == [], seen
        other = "b" if seen["tag"] == "a" else "a"
        assert seen["generation_at_open"] == generation
        assert seen["monotonic"] and seen["events"] == total and seen["theirs"] == PER_BATCH * BATCHES
        assert seen["their_row"] == (f"{other}-3-7", 1.0) and seen["their_row_ann"]
        assert seen["corpus_rows"] == len(seed) + 2 * BATCHES * PER_BATCH
        assert seen["generations"] == [generation]  # used the first node's generation, wrote none of its own
        assert seen["local_copy"]
    with lakehouse.open(tmp_path / "first", embedder="hash", **where) as lake:
        keys = lake.sql("SELECT count(*), count(DISTINCT key), count(DISTINCT id) FROM lake.lh_corpus.shared").fetchone()
        rows = len(seed) + 2 * BATCHES * PER_BATCH
        assert keys == (rows, rows, rows)  # every row once, under a key of its own
        ids = {r[0] for r in lake.sql("SELECT id FROM events").fetchall()}
        assert ids == {f"{t}-{b}-{i}" for t, n in (("seed", 1), ("a", BATCHES), ("b", BATCHES))
                       for b in range(n) for i in range(PER_BATCH)}
        ops = lake.sql("SELECT op, count(*) FROM lake.lh.journal WHERE op IN ('dataset.ingest', 'corpus.add') "
                       "AND coalesce(dataset, corpus) IS NOT NULL GROUP BY op ORDER BY op").fetchall()
        assert ops == [("corpus.add", 2 * BATCHES), ("dataset.ingest", 1 + 2 * BATCHES)]
    data = services.s3_keys(where["data_path"])
    assert any("/main/events/" in k for k in data) and any("/lh_corpus/shared/" in k for k in data)
    assert not (tmp_path / "first" / "data").exists()  # the data went to S3, nothing to the root


def test_time_travel_and_a_missing_sidecar(services: SharedServices, tmp_path: Path) -> None:
    where = services.new_lake()
    with lakehouse.open(tmp_path / "one", embedder="hash", **where) as lake:
        lake.ingest(_csv("x", 0), "t", format="csv")
        first = lake.journal(dataset="t", limit=1)[0]["snapshot_id"]
        lake.ingest(_csv("x", 1), "t", format="csv", mode="append")
        lake.sql("DELETE FROM t WHERE batch = 0")
        lake.create_corpus("c", rows=[{"id": str(i), "text": f"row {i} text"} for i in range(100)])
        assert lake.query("SELECT count(*) FROM t", at_snapshot=first).rows == [[PER_BATCH]]
        assert lake.query("SELECT min(batch) FROM t").rows == [[1]]
        sidecar = tmp_path / "one" / "indexes" / "c"
        assert [f.name for f in sidecar.iterdir()] == ["1.usearch"]
    for f in sidecar.iterdir():  # this node lost its sidecars (a new disk): rebuilt from the lake on open
        f.unlink()
    with lakehouse.open(tmp_path / "one", embedder="hash", **where) as lake:
        assert lake.vector_search("c", "row 42 text", 1)[0].id == "42"
        assert lake.query("SELECT count(*) FROM t", at_snapshot=first).rows == [[PER_BATCH]]


def test_stress_two_writers_two_readers(services: SharedServices) -> None:
    """benchmarks/stress.py on this module's PostgreSQL + S3, a root per process (the full 60 s run is
    `python -m benchmarks stress --seconds 60 --catalog postgres`)."""
    result = stress.run(20.0, writers=2, readers=2, batch=50, where=services.new_lake())
    assert result["error_samples"] == [] and result["errors"] == 0
    assert result["rows_written"] > 0 and result["reads"] > 0
    assert result["lost_rows"] == 0 and result["rows_seen"] == result["rows_written"]
    assert result["corpus_rows"] == result["corpus_keys"] == result["rows_written"]


def test_the_sandbox_reads_the_s3_data_path_and_nothing_else_remote(services: SharedServices, tmp_path: Path) -> None:
    where = services.new_lake()
    other = f"s3://{s3_server.BUCKET}/not-the-lake-{tmp_path.name[-8:]}/x.parquet"
    with lakehouse.open(tmp_path / "one", embedder="hash", **where) as lake:
        lake.ingest(_csv("x", 0), "t", format="csv")
        lake.sql(f"COPY (SELECT 42 AS answer) TO '{other}' (FORMAT parquet)")  # the read-write side may
        inside = lake.sql("SELECT data_file FROM ducklake_list_files('lake', 't')").fetchone()[0]
        assert inside.startswith(where["data_path"])
        cur = lake.query_cursor()  # the sandboxed instance itself, under the SQL allow list
        assert cur.execute(f"SELECT count(*) FROM read_parquet('{inside}')").fetchone()[0] == PER_BATCH
        with pytest.raises(duckdb.PermissionException):
            cur.execute(f"SELECT * FROM read_parquet('{other}')").fetchall()
        with pytest.raises(duckdb.PermissionException):
            cur.execute(f"SELECT * FROM read_text('{services.s3.url}/{s3_server.BUCKET}/')").fetchall()
