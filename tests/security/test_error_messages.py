"""Issue 17, item 6: errors say what was wrong in the caller's terms (their file's name and line, the field) and
nothing of the server's (its folders, staging names, the extension directory); and what used to be refused or
accepted by mistake (PIVOT, `?::` casts, k=-5) is answered right."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb_extensions
import httpx
import pytest
from http_server import LiveServer

import lakehouse
from lakehouse.http import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lakehouse.Lake, str]]:
    root = tmp_path_factory.mktemp("errors") / "lake"
    with lakehouse.open(root, embedder="hash") as lake:
        lake.ingest(b"id,name\n1,Ann\n2,Bob\n", "people", filename="p.csv")
        lake.create_corpus("c", dataset="people", text="name")
        with LiveServer(create_app(lake)) as url:
            yield lake, url


def _server_paths(lake: lakehouse.Lake) -> list[str]:
    return [str(lake.root), str(lake.root.resolve()), str(Path(duckdb_extensions.__file__).parent), "/tmp/", "staging"]


UPLOADS = [  # (file name, content, code): each error must name the file as the caller called it
    ("ragged.csv", b"id,name\n1,Ann\n2,Bob,extra\n", "ragged_rows"),
    ("short.csv", b"id,name,state\n1,Ann,IL\n2,Bob\n", "ragged_rows"),
    ("latin1.csv", b"id,name\n1,Jos\xe9\n", "bad_encoding"),
    ("empty.csv", b"", "empty_file"),
    ("broken.parquet", b"PAR1 not really", "bad_file"),
    ("tiny.parquet", b"PAR1", "bad_file"),
    ("broken.json", b"[{\"id\": 1,", "bad_file"),
    ("broken.xlsx", b"PK\x03\x04 not a workbook", "bad_file"),
    ("broken.pdf", b"%PDF-1.4 not a document", "bad_file"),
    ("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "unsupported_format"),
]


@pytest.mark.parametrize(("name", "content", "code"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_an_upload_error_names_the_callers_file_and_no_server_path(served: tuple[lakehouse.Lake, str], name: str,
                                                                  content: bytes, code: str) -> None:
    lake, url = served
    resp = httpx.post(url + "/ingest", files={"file": (name, content)}, data={"dataset": "upload"}, timeout=60)
    assert 400 <= resp.status_code < 500, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and name in error["message"], error
    assert not any(p in resp.text for p in _server_paths(lake)), resp.text
    assert not re.search(r"[0-9a-f]{32}", resp.text), resp.text  # no staging uuid
    assert "upload" not in [d["name"] for d in lake.datasets()]  # and nothing was stored


REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/sql", {"sql": "SELECT * FROM nowhere"}, 422, "sql_catalog"),
    ("POST", "/sql", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}, 403, "function_not_allowed"),
    ("POST", "/sql", {"sql": "SELECT * FROM 'data.parquet'"}, 403, "relation_not_allowed"),
    ("POST", "/sql", {"sql": "LOAD httpfs"}, 403, "statement_not_allowed"),
    ("POST", "/sql", {"sql": "SELECT * FROM people WHERE"}, 400, "sql_syntax"),
    ("POST", "/v1/corpora", {"name": "x", "sql": "SELECT * FROM nowhere", "text": "name"}, 422, "sql_catalog"),
    ("POST", "/vectors/hybrid", {"corpus": "c", "query": "a", "where": "nocolumn = 1"}, 422, "sql_binder"),
    ("POST", "/ingest", {"path": "/etc/passwd", "dataset": "x"}, 403, "import_dirs_unset"),
    ("GET", "/v1/matrix/playbooks", {"query": "q", "k": -5}, 400, "invalid_k"),
    ("POST", "/vectors/search", {"corpus": "c", "query": "a", "k": -5}, 400, "invalid_k"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), REQUESTS,
                         ids=[f"{r[1]}-{r[4]}" for r in REQUESTS])
def test_errors_name_what_was_wrong_and_no_server_path(served: tuple[lakehouse.Lake, str], method: str, path: str,
                                                       body: dict[str, Any], status: int, code: str) -> None:
    lake, url = served
    resp = (httpx.get(url + path, params=body, timeout=30) if method == "GET"
            else httpx.post(url + path, json=body, timeout=30))
    assert resp.status_code == status and resp.json()["error"]["code"] == code, resp.text
    assert not any(p in resp.text for p in _server_paths(lake)), resp.text
    assert "__ducklake_metadata" not in resp.text and "Did you mean \"lake.__" not in resp.text


def test_health_says_it_is_up_and_nothing_of_where(served: tuple[lakehouse.Lake, str]) -> None:
    lake, url = served
    body = httpx.get(url + "/health", timeout=30).json()
    assert body["ok"] is True and body["datasets"] == 1
    assert not any(p in str(body) for p in _server_paths(lake))


def test_what_was_refused_by_mistake_now_works(served: tuple[lakehouse.Lake, str]) -> None:
    _, url = served
    pivot = httpx.post(url + "/sql", json={"sql": "PIVOT people ON name USING count(*) GROUP BY id ORDER BY id"},
                       timeout=30).json()
    assert [c["name"] for c in pivot["columns"]] == ["id", "Ann", "Bob"] and pivot["rows"] == [[1, 1, 0], [2, 0, 1]]
    cast = httpx.post(url + "/sql", json={"sql": "SELECT ?::INTEGER + 1 AS x, $2::VARCHAR AS y", "params": [41, "z"]},
                      timeout=30).json()
    assert cast["rows"] == [[42, "z"]]
