"""Profiles: keys made, stored hashed, resolved, rotated and deleted; the acceptance of issue 15 (an index
hot-swapped by the owner while profile B queries, answers staying correct, and rollback)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from http_server import LiveServer
from llm_servers import LLMServer, chat_installer, llm_fixture  # noqa: F401
from profile_lake import Tenants, build, client

import lakehouse
from lakehouse.cli import main
from lakehouse.engine.profiles import digest
from lakehouse.errors import InvalidInput, SettingsError
from lakehouse.http import create_app


@pytest.fixture
def tenants(tmp_path: pytest.TempPathFactory) -> Iterator[Tenants]:
    with lakehouse.open(tmp_path / "lake", embedder="hash", rebuild_interval_s=0) as lake:
        yield build(lake)


def test_keys_are_stored_hashed_and_shown_once(tenants: Tenants) -> None:
    lake = tenants.lake
    stored = lake.sql("SELECT name, key_sha256 FROM lake.lh.profiles ORDER BY name").fetchall()
    assert dict(stored)["a"] == digest(tenants.keys["a"])
    assert tenants.keys["a"] not in str(lake.sql("SELECT * FROM lake.lh.profiles").fetchall())
    assert [p["name"] for p in lake.list_profiles()] == ["a", "a_write", "b", "b_write"]
    assert "key" not in str(lake.list_profiles()) and lake.profiles.resolve(tenants.keys["b"]).name == "b"
    with pytest.raises(InvalidInput):
        lake.create_profile("a", datasets=["x"])
    with pytest.raises(InvalidInput):
        lake.create_profile("c", datasets=["bad/pattern"])


def test_rotate_and_delete_take_effect_at_once(tenants: Tenants) -> None:
    lake, old = tenants.lake, tenants.keys["a"]
    new = lake.rotate_profile_key("a")["key"]
    assert lake.profiles.resolve(old) is None and lake.profiles.resolve(new).name == "a"
    lake.delete_profile("a")
    assert lake.profiles.resolve(new) is None


def test_cli(tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_EMBEDDER", "hash")
    root = str(tmp_path / "lake")
    assert main(["profile", "create", "sales", "--root", root, "--datasets", "sales_*,regions", "--corpora", "docs",
                 "--access", "read"]) == 0
    key = capsys.readouterr().out.strip()
    assert main(["profile", "list", "--root", root]) == 0
    listed = capsys.readouterr().out
    assert "sales_*,regions" in listed and key not in listed
    with lakehouse.open(root) as lake:
        assert lake.profiles.resolve(key).datasets == ("sales_*", "regions")
    assert main(["profile", "delete", "sales", "--root", root]) == 0


def test_auth_setting() -> None:
    with pytest.raises(SettingsError):
        lakehouse.settings.Settings.load(env={}, auth="sometimes")


def test_hot_swap_while_profile_b_queries(tenants: Tenants) -> None:
    lake = tenants.lake
    before = lake.corpus("b_docs")["active_generation"]
    stop, errors, answers = threading.Event(), [], []
    with LiveServer(create_app(lake)) as url:
        def query() -> None:
            with client(url, tenants.keys["b"]) as b:
                while not stop.is_set():
                    resp = b.post("/vectors/search", json={"corpus": "b_docs", "query": "secret payroll of B", "k": 1})
                    if resp.status_code != 200:
                        errors.append(resp.text)
                    else:
                        answers.append(resp.json()["results"][0]["id"])

        worker = threading.Thread(target=query)
        worker.start()
        try:
            for _ in range(3):
                lake.rebuild_index("b_docs")
        finally:
            stop.set()
            worker.join(timeout=60)
        assert not errors and answers and set(answers) == {"1"}
        assert lake.corpus("b_docs")["active_generation"] == before + 3
        lake.rollback_index("b_docs", before + 2)
        assert lake.corpus("b_docs")["active_generation"] == before + 2
        with client(url, tenants.keys["b"]) as b:
            hit = b.post("/vectors/search", json={"corpus": "b_docs", "query": "secret payroll of B", "k": 1}).json()
            assert hit["results"][0]["id"] == "1"
            assert b.post("/v1/corpora/b_docs/rollback", json={}).status_code == 403  # a read profile


def test_mcp_stdio_serves_as_the_profile_of_mcp_key(tenants: Tenants) -> None:
    pytest.importorskip("mcp")
    from mcp_client import call, stdio_target

    target = stdio_target(tenants.lake.root, LH_MCP_KEY=tenants.keys["a"], LH_EMBEDDER="hash")
    listed = call(target, "list_datasets")
    assert not listed.is_error and "a_sales" in str(listed.content) and "b_sales" not in str(listed.content)
    refused = call(target, "sql_query", {"sql": "SELECT * FROM b_sales"})
    assert refused.is_error and "profile_forbidden" in str(refused.content)


def test_a_placeholder_key_works_only_while_the_server_has_no_keys(tmp_path: pytest.TempPathFactory) -> None:
    """OpenAI clients always send a key: a keyless server takes any; once a profile exists, an unknown key
    is a 401 (a mistyped profile key must never become the owner's access)."""
    import httpx

    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake, LiveServer(create_app(lake)) as url:
        lake.ingest(b"id,name\n1,Ann\n", "people", filename="p.csv")
        placeholder = {"Authorization": "Bearer unused"}
        resp = httpx.post(url + "/sql", json={"sql": "SELECT count(*) FROM people"}, headers=placeholder, timeout=30)
        assert resp.status_code == 200 and resp.json()["rows"] == [[1]]
        key = lake.create_profile("p", datasets=["people"], corpora=[], access="read")["key"]
        resp = httpx.post(url + "/sql", json={"sql": "SELECT count(*) FROM people"}, headers=placeholder, timeout=30)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized", resp.text
        resp = httpx.post(url + "/sql", json={"sql": "SELECT count(*) FROM people"},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert resp.status_code == 200


@pytest.mark.parametrize("header", ["Token {key}", "Basic {key}", "Bearer\t{key}", "{key}", "Bearer: {key}"])
def test_a_key_sent_in_another_form_is_refused_not_read_as_no_key(tmp_path: pytest.TempPathFactory,
                                                                  header: str) -> None:
    """A loopback server without an owner key serves a request with no key as the owner's; a profile's key sent
    in a form other than 'Bearer <key>' was read as no key, so the profile's caller got the owner's access."""
    import httpx

    with lakehouse.open(tmp_path / "lake", embedder="hash") as lake, LiveServer(create_app(lake)) as url:
        lake.ingest(b"id,name\n1,Ann\n", "people", filename="p.csv")
        key = lake.create_profile("p", datasets=["elsewhere"], corpora=[], access="read")["key"]
        resp = httpx.post(url + "/sql", json={"sql": "SELECT count(*) FROM people"},
                          headers={"Authorization": header.format(key=key)}, timeout=30)
        assert resp.status_code == 401, resp.text
        assert resp.json() == {"error": {"code": "unauthorized",
                                         "message": "send the API key as 'Authorization: Bearer <key>'"}}
        for empty in ({}, {"Authorization": ""}, {"Authorization": "Bearer"}):  # no key: the owner, on loopback
            resp = httpx.post(url + "/sql", json={"sql": "SELECT count(*) FROM people"}, headers=empty, timeout=30)
            assert resp.status_code == 200, (empty, resp.text)


def test_sql_embed_and_chat_run_as_the_profile_on_every_thread(tenants: Tenants, llm: LLMServer,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """embed() and chat() in a profile's SQL are the profile's calls, also when DuckDB runs the function on a
    thread of its own (which does not carry the caller's context): they were recorded as the owner's."""
    lake = tenants.lake
    with chat_installer(lake, llm, monkeypatch), LiveServer(create_app(lake)) as url, \
            client(url, tenants.keys["a"]) as http:
        for sql in ("SELECT len(embed('x'))", "SELECT len(embed(t)) FROM (SELECT 'a' || i AS t FROM range(3) r(i))",
                    "SELECT chat('ollama/m', 'hi')", "SELECT chat('ollama/m', 'q' || i) FROM range(3) r(i)"):
            assert http.post("/sql", json={"sql": sql}).status_code == 200, sql
    calls = [o for o in lake.observer.ops if o.op in ("embed", "chat")]
    assert sorted({o.op for o in calls}) == ["chat", "embed"]
    assert [(o.op, o.origin, o.profile) for o in calls if o.profile != "a"] == []
