"""HTTP API: real requests over loopback (httpx + waitress), Flask's test client for unit checks."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import logging
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest
from http_server import (  # noqa: F401  (fixtures)
    LiveServer,
    app_fixture,
    client_fixture,
    free_port,
    http_fixture,
    live_url_fixture,
    make_lake_fixture,
)

import lakehouse
from lakehouse.http import create_app
from lakehouse.http.json import to_jsonable

CSV = b"name,role,age\nann,welder,31\nbob,driver,45\ncy,welder,28\n"
REPO = Path(__file__).resolve().parents[1]


def upload(client: httpx.Client, dataset: str, data: bytes = CSV, name: str = "people.csv") -> httpx.Response:
    return client.post("/ingest", params={"dataset": dataset}, files={"file": (name, data, "text/csv")})


def test_health(http, lake):
    body = http.get("/health").json()
    assert body == {"ok": True, "version": lakehouse.__version__, "duckdb": duckdb.__version__, "datasets": 0}
    assert str(lake.root) not in http.get("/health").text  # no server path to a caller


def test_upload_creates_dataset_then_same_upload_is_skipped(http):
    first = upload(http, "people")
    assert first.status_code == 201, first.text
    assert first.json()["rows"] == 3 and first.json()["skipped"] is False and first.json()["format"] == "csv"
    again = upload(http, "people")
    assert again.status_code == 200 and again.json()["skipped"] is True
    assert again.json()["content_sha256"] == first.json()["content_sha256"]
    assert [d["name"] for d in http.get("/datasets").json()["datasets"]] == ["people"]
    assert http.get("/health").json()["datasets"] == 1


def test_upload_options_from_form_fields(client):
    # no suffix to detect from: format comes from the form, as do dataset and mode
    form = {"dataset": "tabbed", "format": "tsv", "mode": "replace",
            "file": (io.BytesIO(b"a\tb\n1\t2\n"), "blob")}
    resp = client.post("/ingest", data=form, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.json
    assert resp.json["format"] == "tsv" and resp.json["mode"] == "replace"
    assert [c["name"] for c in resp.json["columns"]] == ["a", "b"]


def test_json_path_ingest_respects_import_dirs(make_lake, tmp_path):
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "people.csv").write_bytes(CSV)
    (tmp_path / "secret.csv").write_bytes(CSV)
    client = create_app(make_lake(import_dirs=[str(imports)])).test_client()

    ok = client.post("/ingest", json={"path": str(imports / "people.csv"), "dataset": "people"})
    assert ok.status_code == 201, ok.json
    assert ok.json["rows"] == 3
    relative = client.post("/ingest?dataset=people", json={"path": "people.csv"})  # relative to the import dir
    assert relative.status_code == 200 and relative.json["skipped"] is True
    for path in (str(tmp_path / "secret.csv"), "../secret.csv", "/etc/passwd"):
        resp = client.post("/ingest", json={"path": path, "dataset": "leak"})
        assert resp.status_code == 403, (path, resp.json)
        assert resp.json["error"]["code"] == "path_outside_import_dirs"


def test_json_path_ingest_without_import_dirs_is_forbidden(client, tmp_path):
    (tmp_path / "people.csv").write_bytes(CSV)
    resp = client.post("/ingest", json={"path": str(tmp_path / "people.csv"), "dataset": "people"})
    assert resp.status_code == 403
    assert resp.json["error"]["code"] == "import_dirs_unset"


def test_sql_rows_types_and_truncation(http):
    assert upload(http, "people").status_code == 201
    body = http.post("/sql", json={"sql": "SELECT name, age FROM people ORDER BY age"}).json()
    assert body["columns"] == [{"name": "name", "type": "VARCHAR"}, {"name": "age", "type": "BIGINT"}]
    assert body["rows"] == [["cy", 28], ["ann", 31], ["bob", 45]]
    assert body["row_count"] == 3 and body["truncated"] is False and body["elapsed_ms"] >= 0

    capped = http.post("/sql", json={"sql": "SELECT name FROM people ORDER BY name", "max_rows": 2}).json()
    assert capped["rows"] == [["ann"], ["bob"]] and capped["row_count"] == 2 and capped["truncated"] is True

    params = http.post("/sql", json={"sql": "SELECT count(*) AS n FROM people WHERE role = ?",
                                     "params": ["welder"]}).json()
    assert params["rows"] == [[2]]
    named = http.post("/sql", json={"sql": "SELECT $x + 1 AS y", "params": {"x": 41}}).json()
    assert named["rows"] == [[42]]


def test_sql_max_rows_never_exceeds_the_server_cap(make_lake):
    client = create_app(make_lake(max_rows=2)).test_client()
    body = client.post("/sql", json={"sql": "SELECT * FROM range(10)", "max_rows": 1000}).json
    assert body["row_count"] == 2 and body["truncated"] is True


def test_sql_refuses_writes_files_and_multiple_statements(http):
    refused = ["DROP TABLE x", "COPY (SELECT 1) TO 'x.csv'", "SELECT * FROM read_csv('/etc/passwd')",
               "SELECT 1; SELECT 2"]
    for sql in refused:
        resp = http.post("/sql", json={"sql": sql})
        assert resp.status_code == 403, (sql, resp.text)
        assert set(resp.json()["error"]) >= {"code", "message"}, sql
    assert not Path("x.csv").exists()


def test_sql_serialises_duckdb_types(client):
    sql = ("SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, TIME '01:02:03' AS t, "
           "12.50::DECIMAL(6,2) AS dec, 'b7a3c5d2-1f4e-4a8b-9c3d-2e1f0a9b8c7d'::UUID AS u, "
           "'\\x00\\xff'::BLOB AS b, 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, [1.5, 'nan'::DOUBLE] AS l, "
           "{'k': 1} AS s, MAP([1], ['one']) AS m, INTERVAL 90 SECOND AS i")
    resp = client.post("/sql", json={"sql": sql})
    assert resp.status_code == 200, resp.json
    names = [c["name"] for c in resp.json["columns"]]
    row = dict(zip(names, resp.json["rows"][0], strict=True))
    assert row == {"d": "2024-01-02", "ts": "2024-01-02T03:04:05", "t": "01:02:03", "dec": 12.5,
                   "u": "b7a3c5d2-1f4e-4a8b-9c3d-2e1f0a9b8c7d", "b": "AP8=", "nan": None, "inf": None,
                   "l": [1.5, None], "s": {"k": 1}, "m": {"1": "one"}, "i": 90.0}
    assert "NaN" not in resp.get_data(as_text=True)


def test_to_jsonable_numpy_and_python_types():
    value = {"a": np.array([[1.0, np.nan], [np.inf, 2.0]]), "b": np.float32(0.5), "c": np.int64(7),
             "d": np.bool_(True), "e": decimal.Decimal("NaN"), "f": decimal.Decimal("10"),
             "g": uuid.UUID(int=1), "h": datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
             "i": b"hi", "j": (1, {2}), 3: math.nan}
    out = to_jsonable(value)
    assert out == {"a": [[1.0, None], [None, 2.0]], "b": 0.5, "c": 7, "d": True, "e": None, "f": 10,
                   "g": "00000000-0000-0000-0000-000000000001", "h": "2024-01-02T00:00:00+00:00",
                   "i": "aGk=", "j": [1, [2]], "3": None}
    json.dumps(out, allow_nan=False)


def test_bad_json_is_400(client):
    for route in ("/sql", "/ingest"):
        resp = client.post(route, data="{not json", content_type="application/json")
        assert resp.status_code == 400, route
        assert resp.json["error"]["code"] == "invalid_json"


def test_oversized_upload_is_413_over_http(make_lake):
    with LiveServer(create_app(make_lake(max_upload_mb=1))) as url:
        resp = httpx.post(url + "/ingest", params={"dataset": "big"},
                          files={"file": ("big.csv", b"a\n" + b"1\n" * 2**20, "text/csv")}, timeout=30)
    assert resp.status_code == 413
    assert resp.json() == {"error": {"code": "payload_too_large",
                                     "message": "request body is larger than 1 MiB (max_upload_mb)"}}


@pytest.mark.parametrize("path, body", [
    ("/sql", {"sql": "SELECT 1", "params": ["x" * 2**20]}),
    ("/v1/matrix/playbooks/bulk", [{"query": "x" * 2**20}]),  # a bare array was read without the limit
    ("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x" * 2**20}}),  # max_upload_mb
])
def test_every_json_body_is_held_to_max_json_mb(make_lake, path, body):
    with LiveServer(create_app(make_lake(max_json_mb=1, max_upload_mb=8))) as url:
        resp = httpx.post(url + path, json=body, headers={"Accept": "application/json, text/event-stream"}, timeout=30)
        chunked = httpx.post(url + path, content=iter([json.dumps(body).encode()]),  # no Content-Length
                             headers={"Content-Type": "application/json", "Accept": "application/json"}, timeout=30)
    for r in (resp, chunked):
        assert r.status_code == 413, r.text[:200]
        assert r.json()["error"]["code"] == "payload_too_large"
        assert "max_json_mb" in r.json()["error"]["message"]


def test_bulk_playbooks_take_a_bare_array_or_an_object(client):
    entry = {"query": "forklift", "corpus": "nope", "answer_id": "1", "outcome": 1}
    for body in ([entry], {"entries": [entry]}):
        resp = client.post("/v1/matrix/playbooks/bulk", json=body)
        assert resp.status_code == 200 and resp.json["recorded"] + resp.json["failed"] == 1, resp.json
    bad = client.post("/v1/matrix/playbooks/bulk", json="entries")
    assert bad.status_code == 400 and bad.json["error"] == {
        "code": "invalid_json", "message": "request body must be a JSON object or array, got a string"}


def test_ingest_refuses_path_and_source_together(client):
    """`path` is the JSON name of the op's `source`: given both, one was dropped without a word."""
    resp = client.post("/ingest", json={"dataset": "x", "path": "a.csv", "source": "b.csv"})
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_source", resp.json
    assert client.get("/datasets").json["datasets"] == []


def test_unknown_route_and_wrong_method(client):
    missing = client.get("/no/such/route")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.get("/sql")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_datasets_list_and_detail(http):
    assert http.get("/datasets").json() == {"datasets": []}
    assert upload(http, "people").status_code == 201
    listed = http.get("/datasets").json()["datasets"]
    assert [(d["name"], d["rows"]) for d in listed] == [("people", 3)]
    detail = http.get("/datasets/people").json()
    assert detail["name"] == "people" and detail["rows"] == 3
    assert [c["name"] for c in detail["columns"]] == ["name", "role", "age"]
    assert len(detail["snapshots"]) == 1
    assert http.get("/datasets/nobody").status_code == 404
    assert http.get("/datasets/Not-Valid").status_code == 400


def test_internal_error_is_500_without_detail(client, lake, monkeypatch, caplog):
    def boom(ctx: object) -> list:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(lakehouse.engine.datasets, "list_datasets", boom)
    with caplog.at_level(logging.ERROR, logger="lakehouse.http.errors"):
        resp = client.get("/datasets")
    assert resp.status_code == 500
    assert resp.json == {"error": {"code": "internal", "message": "internal error"}}
    assert "secret detail" not in resp.get_data(as_text=True)
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)  # logged, with traceback


@pytest.mark.slow
def test_cli_serve_end_to_end(tmp_path):
    """`python -m lakehouse serve` as a real process: health, ingest, query, then SIGTERM."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LH_")}
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "lakehouse", "serve", "--root", str(tmp_path / "lake"),
                                 "--port", str(port)], cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90  # a ceiling for a loaded CI machine, not a speed target
        while True:
            assert proc.poll() is None, f"server exited early:\n{log_path.read_text()}"
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no /health within 90 s:\n{log_path.read_text()}"
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as http_client:
            assert upload(http_client, "people").status_code == 201
            body = http_client.post("/sql", json={"sql": "SELECT count(*) AS n FROM people"}).json()
            assert body["rows"] == [[3]]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log_path.read_text()
