"""Ingest: formats, sources, idempotency, modes, merge-on-read, bad input, atomicity."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakehouse
from lakehouse.engine import ingest as ingest_mod
from lakehouse.errors import Conflict, InvalidInput

CSV = "id,name,state,rate\n1,Ann,IL,20.5\n2,Bob,WI,18\n3,Cy,IL,22\n"


def rows(lake, sql):
    return lake.sql(sql).fetchall()


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("w.csv", CSV, "csv"),
        ("w.tsv", CSV.replace(",", "\t"), "tsv"),
        ("w.json", json.dumps([{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}]), "json"),
        ("w.ndjson", '{"id": 1, "name": "Ann"}\n{"id": 2, "name": "Bob"}\n', "ndjson"),
        ("w.txt", CSV.replace(",", ";"), "csv"),  # unknown suffix: sniffed as CSV, delimiter sniffed too
    ],
)
def test_formats(lake, write, name, content, fmt):
    res = lake.ingest(write(name, content), "w")
    assert res.format == fmt and not res.skipped
    assert res.rows == rows(lake, "SELECT count(*) FROM w")[0][0] >= 2
    assert rows(lake, "SELECT name FROM w WHERE id = 2") == [("Bob",)]


def test_parquet_bytes_fileobj_and_glob(lake, tmp_path, write):
    table = pa.table({"id": [1, 2, 3], "tags": [["a"], [], ["b", "c"]]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    res = lake.ingest(buf.getvalue(), "from_bytes")  # no name: format from the magic bytes
    assert (res.format, res.rows) == ("parquet", 3)
    assert rows(lake, "SELECT tags FROM from_bytes WHERE id = 3") == [(["b", "c"],)]
    with open(write("x.csv", CSV), "rb") as fh:
        assert lake.ingest(fh, "from_file").rows == 3
    write("part1.csv", "id,v\n1,a\n")
    write("part2.csv", "id,v\n2,b\n3,c\n")
    res = lake.ingest(str(tmp_path / "files" / "part*.csv"), "parts")
    assert res.rows == 3
    assert rows(lake, "SELECT string_agg(v, '' ORDER BY id) FROM parts") == [("abc",)]


def test_identical_content_is_skipped_and_writes_nothing(lake, write):
    path = write("w.csv", CSV)
    first = lake.ingest(path, "w")
    snapshots = rows(lake, "SELECT count(*) FROM lake.snapshots()")[0][0]
    again = lake.ingest(path, "w")
    assert again.skipped and again.rows == first.rows and again.snapshot_id == first.snapshot_id
    assert again.content_sha256 == first.content_sha256
    assert rows(lake, "SELECT count(*) FROM lake.snapshots()")[0][0] == snapshots
    # the same bytes through another door are the same content
    assert lake.ingest(CSV.encode(), "w", filename="w.csv").skipped
    # appending the same file twice appends once
    extra = write("more.csv", "id,name,state,rate\n9,Zed,OH,30\n")
    assert not lake.ingest(extra, "w", mode="append").skipped
    assert lake.ingest(extra, "w", mode="append").skipped
    assert rows(lake, "SELECT count(*) FROM w") == [(4,)]
    ledger = rows(lake, "SELECT mode, rows FROM lake.lh.ingests WHERE dataset = 'w' ORDER BY ingested_at")
    assert ledger == [("create", 3), ("append", 1)]


def test_modes(lake, write):
    path = write("w.csv", CSV)
    lake.ingest(path, "w")
    with pytest.raises(Conflict, match="exists"):
        lake.ingest(write("other.csv", "id,name,state,rate\n7,X,IL,1\n"), "w")
    lake.ingest(write("r.csv", "id,name,state,rate\n5,Eve,IN,19\n"), "w", mode="replace")
    assert rows(lake, "SELECT id FROM w") == [(5,)]
    # replacing back with the first content is not 'skipped': the table differs from it now
    assert not lake.ingest(path, "w", mode="replace").skipped
    assert rows(lake, "SELECT count(*) FROM w") == [(3,)]
    # append to a missing dataset creates it
    assert lake.ingest(path, "fresh", mode="append").mode == "create"


def test_merge_on_read_and_compact(lake, write):
    lake.ingest(write("w.csv", CSV), "w")
    delta = write("d1.csv", "id,name,state,rate\n2,Bobby,IL,19\n4,Dee,OH,25\n")
    res = lake.ingest(delta, "w", mode="delta", key="id")
    assert res.rows == 2 and res.mode == "delta"
    merged = rows(lake, "SELECT id, name, state FROM w ORDER BY id")
    assert merged == [(1, "Ann", "IL"), (2, "Bobby", "IL"), (3, "Cy", "IL"), (4, "Dee", "OH")]
    # a later delta wins over an earlier one; within a batch the last row wins
    lake.ingest(write("d2.csv", "id,name,state,rate\n2,Robert,IL,21\n2,Rob,IL,21\n"), "w", mode="delta", key="id")
    assert rows(lake, "SELECT name FROM w WHERE id = 2") == [("Rob",)]
    before = rows(lake, "SELECT * FROM w ORDER BY id")
    out = lake.compact("w")
    assert out["folded"] == 4
    assert rows(lake, "SELECT * FROM w ORDER BY id") == before
    assert rows(lake, "SELECT count(*) FROM lake.lh_store.w__delta") == [(0,)]
    assert lake.compact("w")["folded"] == 0
    # the same delta file again is skipped; a different key is refused
    assert lake.ingest(delta, "w", mode="delta", key="id").skipped
    with pytest.raises(InvalidInput, match="merges on key"):
        lake.ingest(write("d3.csv", "id,name,state,rate\n8,H,IL,1\n"), "w", mode="delta", key="name")


def test_delta_into_new_dataset_and_missing_key(lake, write):
    res = lake.ingest(write("d.csv", "id,v\n1,a\n1,b\n"), "fresh", mode="delta", key="id")
    assert res.rows == 2
    assert rows(lake, "SELECT * FROM fresh") == [(1, "b")]
    with pytest.raises(InvalidInput, match="needs key"):
        lake.ingest(write("e.csv", "id,v\n1,a\n"), "other", mode="delta")
    with pytest.raises(InvalidInput, match="key column 'nope'"):
        lake.ingest(write("f.csv", "id,v\n1,a\n"), "other", mode="delta", key="nope")


@pytest.mark.parametrize(
    ("name", "content", "fmt", "message"),
    [
        ("empty.csv", b"", "auto", "is empty"),
        ("ragged.csv", b"id,name\n1,a\n2,b,c\n3,d\n", "auto", r"line 3 .*3 fields, expected 2"),
        ("bad.csv", b"id,name\n1,caf\xe9\n2,\xff\xfe\n", "auto", "not valid UTF-8"),
        ("dup.csv", b"id,name,Name\n1,a,b\n", "auto", "duplicate column name 'Name'"),
        ("dup.json", b'[{"a": 1, "a": 2}]', "auto", "duplicate column name 'a'"),
        ("x.csv", b"id\n1\n", "xml", "field 'format': Input should be 'auto', 'csv'"),
        ("bad.json", b'[{"a": 1}, {"a": ', "auto", "not valid json"),
        ("bad.parquet", b"PAR1 this is not parquet", "auto", "not valid parquet"),
    ],
)
def test_bad_input_is_a_clear_error(lake, write, name, content, fmt, message):
    lake.ingest(write("good.csv", CSV), "w")
    with pytest.raises(InvalidInput, match=message):
        lake.ingest(write(name, content), "w", mode="replace", format=fmt)
    assert rows(lake, "SELECT count(*) FROM w") == [(3,)]
    assert rows(lake, "SELECT count(*) FROM lake.lh.ingests") == [(1,)]
    assert not any((lake.root / "staging").glob("*"))


def test_ragged_row_far_from_the_sniffer_sample(lake, write):
    body = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(30_000)) + "30001,x,extra\n"
    with pytest.raises(InvalidInput, match="line 30002"):
        lake.ingest(write("big.csv", body), "big")
    assert rows(lake, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'big'") == [(0,)]


def test_append_type_conflict_names_the_column(lake, write):
    lake.ingest(write("a.csv", "id,age\n1,30\n2,41\n"), "people")
    with pytest.raises(InvalidInput, match=r"type conflict in column 'age'.*BIGINT.*'unknown'"):
        lake.ingest(write("b.csv", "id,age\n3,unknown\n"), "people", mode="append")
    with pytest.raises(InvalidInput, match="column 'email' is not in dataset"):
        lake.ingest(write("c.csv", "id,email\n3,x@y\n"), "people", mode="append")
    # values that do convert are cast: '7' as text in JSON becomes BIGINT
    lake.ingest(write("d.json", '[{"id": 4, "age": "7"}]'), "people", mode="append")
    assert rows(lake, "SELECT age FROM people WHERE id = 4") == [(7,)]
    assert rows(lake, "SELECT typeof(age) FROM people LIMIT 1") == [("BIGINT",)]


@pytest.mark.parametrize("bad", ["Workers", "1abc", "a-b", "x; DROP TABLE w", "", "a" * 64, "lh_x", "a__b", None])
def test_dataset_names_are_validated(lake, write, bad):
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        lake.ingest(write("w.csv", CSV), bad)


def test_exception_mid_ingest_leaves_previous_state(lake, write, monkeypatch):
    lake.ingest(write("w.csv", CSV), "w")
    before = rows(lake, "SELECT * FROM w ORDER BY id")

    def boom(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(ingest_mod, "_record", boom)
    for mode, content in (("replace", "id,name,state,rate\n9,Z,IL,1\n"), ("append", "id,name,state,rate\n9,Z,IL,1\n"),
                          ("delta", "id,name,state,rate\n1,Q,IL,1\n")):
        with pytest.raises(OSError, match="injected"):
            lake.ingest(write(f"{mode}.csv", content), "w", mode=mode, key="id")
        assert rows(lake, "SELECT * FROM w ORDER BY id") == before
    assert rows(lake, "SELECT count(*) FROM lake.lh.ingests") == [(1,)]
    assert rows(lake, "SELECT kind FROM lake.lh.datasets") == [("table",)]


def test_process_killed_mid_ingest_leaves_previous_state(tmp_path, write):
    root = tmp_path / "lake"
    with lakehouse.open(root) as lk:
        lk.ingest(write("w.csv", CSV), "w")
    big = write("big.csv", "id,name,state,rate\n" + "".join(f"{i},n,IL,1\n" for i in range(10, 5000)))
    child = textwrap.dedent(f"""
        import os, lakehouse
        from lakehouse.engine import ingest
        def die(*a, **k):
            os._exit(9)   # the process dies after the table write, before commit
        ingest._record = die
        lk = lakehouse.open({str(root)!r})
        lk.ingest({str(big)!r}, "w", mode="replace")
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()
    with lakehouse.open(root) as lk:
        assert lk.sql("SELECT count(*) FROM w").fetchall() == [(3,)]
        assert lk.sql("SELECT count(*) FROM lake.lh.ingests").fetchall() == [(1,)]
        assert lk.ingest(big, "w", mode="replace").rows == 4990


def test_datasets_listing_and_description(lake, write):
    lake.ingest(write("w.csv", CSV), "w")
    lake.ingest(write("d.csv", "id,name,state,rate\n2,B,IL,1\n"), "w", mode="delta", key="id")
    listing = lake.datasets()
    assert [(d["name"], d["kind"], d["key"], d["rows"], d["ingests"]) for d in listing] == [("w", "merge", "id", 3, 2)]
    info = lake.dataset("w")
    assert [c["name"] for c in info["columns"]] == ["id", "name", "state", "rate"]
    assert [s["mode"] for s in info["snapshots"]] == ["create", "delta"]
    assert all(isinstance(s["snapshot_id"], int) for s in info["snapshots"])
    lake.drop_dataset("w")
    assert lake.datasets() == []
