"""Every attack of sql_attacks.py through every surface that takes SQL, and the legitimate reads through them too.

Statement surfaces: `Lake.query` (at the latest snapshot and `at_snapshot`, whose sandboxed instance is another),
`POST /sql`, `lake.create_corpus(sql=...)`, `POST /v1/corpora`, the MCP tool `sql_query` (streamable HTTP at /mcp).
Expression surfaces (`where`): `POST /vectors/hybrid`, `lake.matrix_search(where=)`, `lake.ask(where=)`, the MCP tool
`vectors_hybrid`, truth rules through `truth_check(toml, lake.query)` and through the SQL macro `truth_check(toml)`
(an engine function reading from inside a query, on a cursor of its own). After each attack: the refusal code
expected, a 403 from the forbidden family over HTTP, nothing changed (snapshots, DuckLake options, files)
and the process answering.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from mcp_client import call, http_target
from secured_lake import Target
from sql_attacks import ATTACKS, POSITIVE, POSITIVE_WHERE, Attack, Read

from lakehouse.engine.sql_policy import REFUSAL_CODES
from lakehouse.engine.truth import truth_check
from lakehouse.errors import Forbidden, InvalidInput, LakehouseError


def _truth(text: str) -> str:
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'[[rule]]\nname = "r"\ndataset = "workers"\nassert = "{quoted}"\n'


def _python(call: Callable[[], Any]) -> tuple[int, str]:
    """(status, code) of the refusal `call` raises; a call that returns is a failure."""
    with pytest.raises(LakehouseError) as err:
        call()
    return err.value.status, err.value.code


def _http(response: Any) -> tuple[int, str]:
    body = response.json()
    assert list(body) == ["error"], body
    return response.status_code, body["error"]["code"]


def _mcp(target: Target, tool: str, arguments: dict[str, Any]) -> tuple[int | None, str]:
    """(None, code): a tool error carries the operation's code, not an HTTP status."""
    result = call(http_target(str(target.http.base_url).rstrip("/")), tool, arguments)
    assert result.is_error, result.content[0].text
    return None, json.loads(result.content[0].text)["error"]["code"]


def _first(target: Target) -> int:
    """The lake's first snapshot that holds `workers` (time travel opens a sandboxed instance of its own)."""
    return target.lake.journal(dataset="workers", limit=1000)[-1]["snapshot_id"]


# surface name -> (kind, how to send the attack's SQL or expression)
SURFACES: dict[str, tuple[str, Callable[[Target, str], tuple[int, str]]]] = {
    "query": ("statement", lambda t, sql: _python(lambda: t.lake.query(sql))),
    "query-at-snapshot": ("statement", lambda t, sql: _python(lambda: t.lake.query(sql, at_snapshot=_first(t)))),
    "http-sql": ("statement", lambda t, sql: _http(t.http.post("/sql", json={"sql": sql}))),
    "corpus": ("statement", lambda t, sql: _python(lambda: t.lake.create_corpus("evil", sql=sql, text="name"))),
    "http-corpus": ("statement", lambda t, sql: _http(t.http.post("/v1/corpora", json={
        "name": "evil", "sql": sql, "text": "name"}))),
    "http-hybrid": ("where", lambda t, expr: _http(t.http.post("/vectors/hybrid", json={
        "corpus": "wc", "query": "forklift", "k": 2, "where": expr}))),
    "matrix": ("where", lambda t, expr: _python(lambda: t.lake.matrix_search("forklift", corpora=["wc"], where=expr))),
    "ask": ("where", lambda t, expr: _python(lambda: t.lake.ask("forklift", corpora=["wc"], where=expr))),
    "truth": ("truth", lambda t, expr: _python(lambda: truth_check(_truth(expr), t.lake.query))),
    "sql-truth": ("truth", lambda t, expr: _python(lambda: t.lake.query("SELECT * FROM truth_check($1)",
                                                                        [_truth(expr)]))),
    "mcp-sql": ("statement", lambda t, sql: _mcp(t, "sql_query", {"sql": sql})),
    "mcp-hybrid": ("where", lambda t, expr: _mcp(t, "vectors_hybrid", {"corpus": "wc", "query": "forklift",
                                                                       "where": expr})),
}


def _expected(kind: str, attack: Attack) -> str:
    return {"statement": attack.code, "where": "where_not_allowed", "truth": attack.truth_code}[kind]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
@pytest.mark.parametrize("surface", list(SURFACES))
def test_attack_is_refused_and_changes_nothing(target: Target, surface: str, attack: Attack) -> None:
    kind, send = SURFACES[surface]
    before = target.state()
    status, code = send(target, target.fill(attack.sql if kind == "statement" else attack.where()))
    assert code == _expected(kind, attack), (surface, attack.id, code)
    if status is not None:
        # a refusal is a 403; a truth file that could not be read as a rule is a 400, and nothing ran
        assert status == (403 if code in REFUSAL_CODES else 400) and code in (*REFUSAL_CODES, "invalid_truth_rule")
    assert target.state() == before
    assert "evil" not in {c["name"] for c in target.lake.corpora()}
    target.healthy()


def test_every_http_refusal_is_a_403_of_the_forbidden_family(target: Target) -> None:
    """The statement attacks over /sql and /v1/corpora, the expression ones over /vectors/hybrid."""
    seen = set()
    for attack in ATTACKS:
        for surface in ("http-sql", "http-corpus", "http-hybrid"):
            kind, send = SURFACES[surface]
            status, code = send(target, target.fill(attack.sql if kind == "statement" else attack.where()))
            assert status == 403 and code in REFUSAL_CODES, (surface, attack.id, status, code)
            seen.add(code)
    assert seen == {"function_not_allowed", "relation_not_allowed", "statement_not_allowed", "multiple_statements",
                    "where_not_allowed"}


def test_attacks_cover_every_class() -> None:
    assert {a.kind for a in ATTACKS} == {"executor", "ducklake", "checkpoint", "scanner", "metadata", "paths",
                                         "files", "statement"}
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)


def _rows(read: Read, rows: list[list[Any]]) -> None:
    if read.rows is not None:
        assert rows == read.rows, read.id
    else:
        assert len(rows) >= read.min_rows, read.id


@pytest.mark.parametrize("read", POSITIVE, ids=lambda r: r.id)
def test_legitimate_reads_keep_working_in_python(target: Target, read: Read) -> None:
    _rows(read, target.lake.query(read.sql, read.params).rows)


@pytest.mark.parametrize("read", POSITIVE, ids=lambda r: r.id)
def test_legitimate_reads_keep_working_over_http(target: Target, read: Read) -> None:
    body: dict[str, Any] = {"sql": read.sql}
    if read.params is not None:
        body["params"] = read.params
    resp = target.http.post("/sql", json=body)
    assert resp.status_code == 200, resp.text
    _rows(read, resp.json()["rows"])


@pytest.mark.parametrize("how", ["python", "http"])
def test_a_corpus_from_sql_reads_through_the_sandbox(target: Target, how: str) -> None:
    """The definition runs on the read-only instance, whose current database is its macro database (the
    read-write one's is the lake); a PIVOT without IN lists works there; only the engine writes the corpus."""
    assert target.lake.sql("SELECT current_database()").fetchone() == ("lake",)
    sql = ("SELECT id, name || ' ' || current_database() AS text FROM workers WHERE id IN "
           "(SELECT id FROM (PIVOT workers ON state USING count(*)) WHERE \"IL\" = 1)")
    name = f"from_sql_{how}"
    if how == "python":
        target.lake.create_corpus(name, sql=sql)
    else:
        resp = target.http.post("/v1/corpora", json={"name": name, "sql": sql})
        assert resp.status_code == 201, resp.text
    try:
        rows = target.lake.query(f"SELECT text FROM lake.lh_corpus.{name} ORDER BY id").rows
        assert rows == [["Ann memory"], ["Cy memory"]]
    finally:
        target.lake.drop_corpus(name)


@pytest.mark.parametrize("where", POSITIVE_WHERE)
def test_legitimate_where_keeps_filtering(target: Target, where: str) -> None:
    resp = target.http.post("/vectors/hybrid", json={"corpus": "wc", "query": "forklift", "k": 3, "where": where})
    assert resp.status_code == 200, resp.text
    states = {r["row"]["state"] for r in resp.json()["results"]}
    assert states and states <= {"IL", "WI"}
    assert target.lake.matrix_search("forklift", corpora=["wc"], where=where).results is not None
    assert target.lake.ask("forklift", corpora=["wc"], where=where)["corpora"] == ["wc"]
    report = truth_check(_truth(where), target.lake.query)
    assert not report["errors"], report


def test_a_where_hides_no_statement_behind_a_comment(target: Target) -> None:
    resp = target.http.post("/vectors/hybrid", json={"corpus": "wc", "query": "forklift", "k": 3,
                                                     "where": "state = 'WI' --"})
    assert resp.status_code == 200, resp.text
    assert [r["row"]["name"] for r in resp.json()["results"]] == ["Bob"]
    with pytest.raises(InvalidInput):
        target.lake.hybrid_where("wc", "forklift", where="state = 'WI' /*")
    with pytest.raises(Forbidden):
        target.lake.hybrid_where("wc", "forklift", where="true) UNION SELECT list(1) FROM workers WHERE (true")
