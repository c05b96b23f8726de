"""PostgreSQL tables and queries as ingest sources, against a real PostgreSQL server (`pg_server.PgServer`).

Under CI=true a missing server is a failure, not a skip: `.ci/run` installs it (apt-get install -y postgresql).
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_server import LiveServer
from mcp_client import call, http_target
from pg_server import PgServer, available

import lakehouse
from lakehouse.cli import main as cli_main
from lakehouse.engine.ops import entrance
from lakehouse.errors import Forbidden, InvalidInput, ProviderError
from lakehouse.http import create_app

if not available():
    if os.environ.get("CI") == "true":
        raise RuntimeError("PostgreSQL server binaries are missing: .ci/run must apt-get install -y postgresql")
    pytest.skip("PostgreSQL server binaries are not installed (apt-get install -y postgresql)", allow_module_level=True)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with PgServer() as server:
        server.sql("""
            CREATE TABLE people (id int PRIMARY KEY, name text, rate numeric(10,2), big numeric, born date,
                                 tags text[]);
            INSERT INTO people VALUES
                (1, 'Ann', 12.50, 12345678901234567890.123456789, '1990-01-02', ARRAY['forklift']),
                (2, 'Bob', 9.75, -0.5, NULL, ARRAY[]::text[]),
                (3, 'Cy', NULL, 7, '2001-12-31', NULL);
            CREATE SCHEMA hr;
            CREATE TABLE hr.shifts (worker int, starts timestamp);
            INSERT INTO hr.shifts VALUES (1, '2026-01-05 22:00'), (3, '2026-01-06 06:00');""")
        yield server


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[lakehouse.Lake]:
    with lakehouse.open(tmp_path / "lake", embedder="hash") as lk:
        yield lk


def test_a_table_is_ingested_exactly(pg: PgServer, lake: lakehouse.Lake) -> None:
    res = lake.ingest(pg.url, "people", table="people")
    assert (res.format, res.rows) == ("postgres", 3)
    types = {c["name"]: c["type"] for c in res.columns}
    assert types["rate"] == "DECIMAL(10,2)" and types["tags"] == "VARCHAR[]"
    assert types["big"] == "DECIMAL(29,9)"  # an unconstrained numeric: not rounded through DOUBLE
    assert lake.sql("SELECT big::VARCHAR FROM people WHERE id = 1").fetchone()[0] == "12345678901234567890.123456789"
    assert lake.sql("SELECT count(*) FROM people WHERE born IS NULL").fetchone()[0] == 1
    assert res.source_info["source"] == f"postgres://127.0.0.1:{pg.port}/lakedb"
    assert lake.ingest(pg.url, "people", table="people", mode="replace").skipped  # unchanged table


def test_a_schema_table_and_a_query(pg: PgServer, lake: lakehouse.Lake) -> None:
    assert lake.ingest(pg.url, "shifts", table="hr.shifts").rows == 2
    res = lake.ingest(pg.url, "night", query="SELECT p.name, s.starts FROM people p JOIN hr.shifts s ON s.worker = p.id "
                                             "WHERE extract(hour FROM s.starts) >= 20")
    assert lake.sql("SELECT name FROM night").fetchall() == [("Ann",)] and res.rows == 1


def test_the_rows_are_read_in_one_repeatable_read_snapshot(pg: PgServer, lake: lakehouse.Lake) -> None:
    start = len(pg.log())
    lake.ingest(pg.url, "snap", table="people")
    lines = [ln for ln in pg.log()[start:].splitlines() if "statement: " in ln]
    reads = [i for i, ln in enumerate(lines) if "COPY (" in ln and "pg_typeof" not in ln]  # not the type probe
    assert len(reads) == 1, reads  # one statement: one snapshot, never parallel ctid ranges on several connections
    pid = re.search(r"\[(\d+)\]", lines[reads[0]]).group(1)
    earlier = [ln for ln in lines[:reads[0]] if f"[{pid}]" in ln]
    assert earlier[-1].endswith("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def test_bad_sources_are_refused_clearly(pg: PgServer, lake: lakehouse.Lake) -> None:
    with pytest.raises(InvalidInput) as err:
        lake.ingest(pg.url, "x", table="missing_table")
    assert err.value.code == "source_query" and "missing_table" in err.value.message
    with pytest.raises(InvalidInput) as err:
        lake.ingest(pg.url, "x", query="DELETE FROM people")
    assert err.value.code == "source_query"
    assert pg.sql("SELECT count(*) FROM people").strip() == "3"  # nothing was deleted
    with pytest.raises(InvalidInput) as err:
        lake.ingest(pg.url, "x")
    assert err.value.code == "invalid_source"
    with pytest.raises(InvalidInput):
        lake.ingest(pg.url, "x", table="people; DROP TABLE people")
    with pytest.raises(ProviderError) as unreachable:
        lake.ingest(f"postgres://lake:pw@127.0.0.1:{pg.port + 1}/lakedb", "x", table="people")
    assert unreachable.value.code == "source_unavailable"
    assert lake.datasets() == []


def test_remote_callers_need_allowed_sources(pg: PgServer, lake: lakehouse.Lake, tmp_path: Path) -> None:
    with entrance("http"), pytest.raises(Forbidden) as err:
        lake.ingest(pg.url, "people", table="people")
    assert err.value.code == "source_not_allowed"
    with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
        denied = http.post("/ingest", json={"path": pg.url, "dataset": "people", "table": "people"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "source_not_allowed"
    allowed = [f"postgres://127.0.0.1:{pg.port}/lakedb"]
    with lakehouse.open(tmp_path / "lake2", embedder="hash", allowed_sources=allowed) as lake2, \
            LiveServer(create_app(lake2)) as url, httpx.Client(base_url=url, timeout=60) as http:
        ok = http.post("/ingest", json={"path": pg.url, "dataset": "people", "table": "people"})
        assert ok.status_code == 201, ok.text
        other_db = http.post("/ingest", json={"path": pg.url.replace("/lakedb", "/postgres"), "dataset": "p2",
                                              "table": "pg_class"})
        assert other_db.status_code == 403


def test_the_password_never_leaves(pg: PgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = pg.url.replace(pg.password, "Wr0ng-Pa55word-xyz")
    secrets = (pg.password, "Wr0ng-Pa55word-xyz")
    root = tmp_path / "lake"
    allowed = [f"postgres://127.0.0.1:{pg.port}/*"]
    seen: list[str] = []
    with lakehouse.open(root, embedder="hash", allowed_sources=allowed) as lake:
        lake.ingest(pg.url, "people", table="people")
        with pytest.raises(ProviderError) as err:
            lake.ingest(wrong, "nope", table="people")
        seen.append(str(err.value))
        with pytest.raises(InvalidInput) as err:
            lake.ingest(pg.url, "nope", table="missing")
        seen.append(str(err.value))
        with LiveServer(create_app(lake)) as url, httpx.Client(base_url=url, timeout=60) as http:
            seen.append(http.post("/ingest", json={"path": wrong, "dataset": "h", "table": "people"}).text)
            seen.append(http.post("/ingest", json={"path": pg.url, "dataset": "h", "table": "missing"}).text)
            result = call(http_target(url), "ingest_path", {"source": wrong, "dataset": "m", "table": "people"})
            assert result.is_error
            seen.append(result.content[0].text)
        seen.append(str(lake.observed_ops(limit=100)))
        seen.append(str(lake.storage_errors()))
        seen.append(str(lake.dataset("people")))
        seen.append(str(lake.journal(limit=100)))
        lake.observer.flush()
    assert cli_main(["ingest", wrong, "--dataset", "c", "--table", "people", "--root", str(root)]) == 1
    seen.append(capsys.readouterr().err)
    # every log record of the server side (the test's own MCP and HTTP clients log what they send: not ours)
    seen += [r.getMessage() for r in caplog.records if not r.name.startswith(("mcp.client", "httpx", "httpcore"))]
    seen += [Path(f).read_text() for f in glob.glob(str(root / "observer" / "*.jsonl"))]
    seen += [Path(f).read_text() for f in glob.glob(str(root / "_errors" / "*.jsonl"))]
    text = "\n".join(seen)
    assert "password authentication failed" in text  # the failures are there, told...
    for secret in secrets:
        assert secret not in text  # ...without the password

