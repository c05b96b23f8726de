"""Buckets: the setting, the rescue path when the primary cannot be written, and storage.drain moving the rows back.

The primary is made read-only in the middle of a run (tests/readonly.py: chmod when not root; as root, which CI
is, a read-only bind mount, else chattr +i). Under CI=true a machine that allows neither fails these tests.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer
from readonly import ReadOnlyUnavailable, read_only

import lakehouse
from lakehouse.errors import SettingsError, StorageError
from lakehouse.http import create_app

CSV = b"id,name\n1,Ann\n2,Bob\n"


def _toml(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lakehouse.toml").write_text(text)
    return root


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    primary, rescue = tmp_path / "primary", tmp_path / "rescue"
    root = _toml(tmp_path / "lake", f'[buckets.main]\npath = "{primary}"\nprimary = true\n'
                                    f'[buckets.spare]\npath = "{rescue}"\nrescue = true\n')
    with lakehouse.open(root, embedder="hash") as lk:
        yield lk


@contextlib.contextmanager
def broken(folder: Path) -> Iterator[None]:
    """`folder` read-only for the block; a machine that cannot do it fails under CI and skips elsewhere."""
    try:
        with read_only(folder):
            yield
    except ReadOnlyUnavailable as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))


def _primary(lake: lakehouse.Lake) -> Path:
    return Path(lake.location.data_path)


def _rows(lake: lakehouse.Lake, dataset: str) -> list[list]:
    return lake.query(f"SELECT * FROM {dataset} ORDER BY ALL").rows


@pytest.mark.parametrize(("toml", "key"), [
    ('[buckets.a]\npath = "x"\nsize = 3\n', "buckets.a.size"),
    ('[buckets.a]\nprimary = true\n', "buckets.a.path"),
    ('[buckets.a]\npath = "x"\nprimary = true\n[buckets.b]\npath = "y"\nprimary = true\n', "buckets.b.primary"),
    ('[buckets.a]\npath = "x"\nrescue = true\n[buckets.b]\npath = "y"\nrescue = true\n', "buckets.b.rescue"),
    ('[buckets.a]\npath = "x"\nprimary = "yes"\n', "buckets.a.primary"),
    ('[buckets.a]\npath = "x"\nprimary = true\nrescue = true\n', "buckets.a"),
    ('[buckets.Bad-Name]\npath = "x"\n', "buckets.Bad-Name"),
    ('[buckets.a]\npath = "gs://b/x"\n', "buckets.a.path"),
    ('[buckets.a]\npath = "x"\nprimary = true\n[buckets.b]\npath = "x/r"\nrescue = true\n', "buckets.b.path"),
], ids=["unknown-key", "no-path", "two-primaries", "two-rescues", "not-a-bool", "both-roles", "bad-name",
        "unknown-scheme", "rescue-inside-primary"])
def test_the_buckets_setting_is_checked_at_open(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(SettingsError) as err:
        lakehouse.open(_toml(tmp_path / "lake", toml), embedder="hash")
    assert err.value.details["setting"] == key


def test_the_primary_bucket_is_the_lake_s_data_path(lake: lakehouse.Lake, tmp_path: Path) -> None:
    assert lake.location.data_path == str(tmp_path / "primary") + "/"
    lake.ingest(CSV, "people", filename="p.csv")
    assert list((tmp_path / "primary" / "main" / "people").glob("*.parquet"))
    ok = lakehouse.open(_toml(tmp_path / "s3", '[buckets.cold]\npath = "s3://bucket/lake"\n'), embedder="hash")
    with ok:
        assert ok.location.buckets.named["cold"].path == "s3://bucket/lake/"


def test_an_append_the_primary_refuses_lands_in_the_rescue_bucket_and_drains_back(lake: lakehouse.Lake,
                                                                                    tmp_path: Path) -> None:
    lake.ingest(CSV, "people", filename="p.csv")
    table_dir = _primary(lake) / "main" / "people"
    with broken(table_dir):
        res = lake.ingest(b"id,name\n3,Cy\n4,Dee\n", "people", mode="append", filename="q.csv")
        assert (res.rows, res.bucket) == (2, "spare")
        expected = [[1, "Ann"], [2, "Bob"], [3, "Cy"], [4, "Dee"]]
        assert _rows(lake, "people") == expected  # queryable while the primary is down, through both paths
        assert sorted(lake.sql("SELECT * FROM people").fetchall()) == [tuple(r) for r in expected]
        rescued = lake.storage_errors(kind="rescued")
        assert rescued[0]["target"] == "people" and rescued[0]["details"]["snapshot_id"] == res.snapshot_id
        assert all(f.startswith(str(tmp_path / "rescue")) for f in rescued[0]["details"]["files"])
        assert json.loads(lake.journal(dataset="people")[0]["details"])["bucket"] == "spare"
        with pytest.raises(StorageError) as err:  # the primary still refuses: nothing moves
            lake.drain_storage()
        assert err.value.code == "drain_failed"
        assert _rows(lake, "people") == expected
    before = lake.sql("SELECT id FROM lake.current_snapshot()").fetchone()[0]
    out = lake.drain_storage()
    assert (out["files"], out["rows"], out["remaining"]) == (1, 2, 0)
    assert _rows(lake, "people") == expected  # no row lost, none doubled
    files = [r[0] for r in lake.sql("SELECT data_file FROM ducklake_list_files('lake', 'people')").fetchall()]
    assert files and not any("rescue" in f for f in files)
    assert lake.changes("people", before)["changes"] == []  # a move is no change
    assert lake.journal(op="storage.drain")[0]["dataset"] == "people"
    assert lake.drain_storage()["files"] == 0


def test_a_new_dataset_and_a_delta_are_rescued_too(lake: lakehouse.Lake) -> None:
    lake.ingest(CSV, "people", filename="p.csv")
    main = _primary(lake) / "main"
    with broken(main):
        fresh = lake.ingest(b"id,site\n1,Joliet\n", "sites", filename="s.csv")
        assert fresh.bucket == "spare"
    store = _primary(lake) / "lh_store"
    store.mkdir(parents=True, exist_ok=True)
    with broken(store):
        delta = lake.ingest(b"id,name\n2,Bo\n", "people", mode="delta", key="id", filename="d.csv")
        assert delta.bucket == "spare"
        assert _rows(lake, "people") == [[1, "Ann"], [2, "Bo"]]
    assert lake.drain_storage()["files"] == 3  # the sites table, the people base copied at the first delta, the delta
    assert _rows(lake, "people") == [[1, "Ann"], [2, "Bo"]]
    assert _rows(lake, "sites") == [[1, "Joliet"]]


def test_without_a_rescue_bucket_a_failed_write_changes_nothing(tmp_path: Path) -> None:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake:
        lake.ingest(CSV, "people", filename="p.csv")
        snapshot = lake.sql("SELECT id FROM lake.current_snapshot()").fetchone()[0]
        with broken(_primary(lake) / "main" / "people"), pytest.raises(StorageError):
            lake.ingest(b"id,name\n3,Cy\n", "people", mode="append", filename="q.csv")
        assert lake.sql("SELECT id FROM lake.current_snapshot()").fetchone()[0] == snapshot
        assert _rows(lake, "people") == [[1, "Ann"], [2, "Bob"]]
        assert lake.storage_errors(kind="ingest_failed")


def test_rescues_and_drains_over_http_and_sql(lake: lakehouse.Lake) -> None:
    lake.ingest(CSV, "people", filename="p.csv")
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
        with broken(_primary(lake) / "main" / "people"):
            resp = http.post("/ingest", params={"dataset": "people", "mode": "append"},
                             files={"file": ("q.csv", b"id,name\n3,Cy\n")})
            assert resp.status_code == 201 and resp.json()["bucket"] == "spare"
        errors = http.get("/storage/errors", params={"kind": "rescued"}).json()["errors"]
        assert errors[0]["code"] == "primary_unwritable"
        assert lake.sql("SELECT count(*) FROM storage_errors() WHERE kind = 'rescued'").fetchone()[0] == 1
        drained = http.post("/storage/drain").json()
        assert (drained["files"], drained["rows"]) == (1, 1)
    assert _rows(lake, "people") == [[1, "Ann"], [2, "Bob"], [3, "Cy"]]
