"""Validation rules (declared in the lake, run by every ingest inside its transaction, checked on demand) and
truth rules (TOML assertions in the read-only sandbox) over Python, SQL, HTTP and the CLI."""

from __future__ import annotations

import json

import httpx
import pytest
from hash_lake import hash_http_fixture, hash_lake_fixture  # noqa: F401  (fixtures)

import lakehouse
from lakehouse.cli import main as cli_main
from lakehouse.errors import Forbidden, Unprocessable

PEOPLE = b"id,name,state\n1,Ann,IL\n2,Bob,WI\n"
RULES = [
    {"dataset": "people", "name": "id_unique", "kind": "unique", "params": {"column": "id"}},
    {"dataset": "people", "name": "name_present", "kind": "not_null", "params": {"column": "name"}},
    {"dataset": "people", "name": "known_state", "kind": "allowed", "params": {"column": "state", "values": ["IL", "WI"]},
     "severity": "warn"},
]






def upload(http: httpx.Client, data: bytes, mode: str = "append", **params: str) -> httpx.Response:
    return http.post("/ingest", params={"dataset": "people", "mode": mode, **params},
                     files={"file": ("people.csv", data, "text/csv")})


def state(lake: lakehouse.Lake) -> tuple[list[tuple], int]:
    return (lake.sql("SELECT * FROM people ORDER BY ALL").fetchall(),
            lake.sql("SELECT count(*) FROM lh.ingests").fetchone()[0])


def test_ingest_runs_the_rules_inside_its_transaction(lake, http):
    assert http.post("/v1/rules", json={"rules": RULES}).status_code == 201
    assert [r["name"] for r in http.get("/v1/rules", params={"dataset": "people"}).json()["rules"]] == [
        "id_unique", "known_state", "name_present"]
    refused = upload(http, b"id,name,state\n1,Ann,IL\n1,Bob,WI\n", mode="create")  # rules apply from the first ingest
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed"
    assert lake.datasets() == []
    assert upload(http, PEOPLE, mode="create").status_code == 201
    before = state(lake)

    dup = upload(http, b"id,name,state\n2,Cy,IL\n")
    assert dup.status_code == 422, dup.text
    assert "id_unique" in dup.json()["error"]["message"] and dup.json()["error"]["failures"][0]["count"] == 2
    assert state(lake) == before  # the table write rolled back, the ledger unchanged
    failed = lake.storage_errors(kind="ingest_failed")[0]
    assert failed["target"] == "people" and failed["code"] == "validation_failed"

    warned = upload(http, b"id,name,state\n3,Cy,TX\n")
    assert warned.status_code == 201
    (warning,) = warned.json()["warnings"]
    assert (warning["rule"], warning["count"], warning["sample"]) == ("known_state", 1, [{"id": 3, "name": "Cy",
                                                                                        "state": "TX"}])
    recorded = lake.observed_ops(op="dataset.ingest", status="ok", limit=1)[0]
    assert recorded["output"]["warnings"] == ["known_state"]
    assert lake.ingest(b"id,name,state\n4,Di,IL\n", "people", mode="append", filename="p.csv").warnings[0]["count"] == 1

    # a merge-on-read dataset: the rules see the merged view of base and deltas
    assert upload(http, b"id,name,state\n4,Dee,IL\n", mode="delta", key="id").status_code == 201
    merged = state(lake)
    with pytest.raises(Unprocessable, match="name_present"):
        lake.ingest(b"id,name,state\n5,,IL\n", "people", mode="delta", key="id", filename="d.csv")
    assert state(lake) == merged


def test_rules_check_list_and_delete(lake, http, tmp_path, capsys):
    lake.ingest(b"id,name,state\n1,Ann,IL\n1,,OH\n", "people", filename="p.csv")  # before any rule
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps({"rules": RULES}))
    assert cli_main(["rules", "put", str(rules_file), "--root", str(lake.root)]) == 0
    assert capsys.readouterr().out.strip() == "3 rules stored"

    out = http.post("/v1/rules/people/check", json={"sample": 1}).json()
    assert (out["passed"], out["failed"], out["warnings"]) == (False, ["id_unique", "name_present"], ["known_state"])
    unique = out["results"][0]
    assert unique["count"] == 2 and unique["sample"] == [{"key": {"id": 1}, "rows": 2}]
    assert cli_main(["rules", "check", "people", "--root", str(lake.root)]) == 1  # an error rule fails
    assert json.loads(capsys.readouterr().out)["failed"] == ["id_unique", "name_present"]

    assert http.delete("/v1/rules/people/id_unique").json() == {"deleted": "id_unique", "dataset": "people"}
    assert http.delete("/v1/rules/people/id_unique").status_code == 404
    assert cli_main(["rules", "delete", "people", "name_present", "--root", str(lake.root)]) == 0
    assert [r["name"] for r in lake.ops.call("rules.list")] == ["known_state"]
    assert cli_main(["rules", "check", "people", "--root", str(lake.root)]) == 0  # a warning alone passes
    capsys.readouterr()
    assert cli_main(["rules", "list", "--root", str(lake.root)]) == 0 and "known_state" in capsys.readouterr().out


TRUTH = """
[[rule]]
name = "ids_positive"
dataset = "people"
assert = "id > 0"

[[rule]]
name = "midwest"
dataset = "people"
assert = "state IN ('IL', 'WI')"
severity = "warn"
message = "we staff the Midwest"

[[rule]]
name = "ghost"
dataset = "nobody"
assert = "true"
"""


def test_truth_check_on_every_surface(lake, http, tmp_path, capsys):
    lake.ingest(b"id,name,state\n1,Ann,IL\n2,Bob,OH\n", "people", filename="p.csv")
    out = lake.ops.call("truth.check", rules=TRUTH)
    assert out["passed"] == ["ids_positive"] and out["ok"] is False  # the missing dataset is an error
    (violation,) = out["violations"]
    assert (violation["rule"], violation["severity"], violation["count"], violation["message"]) == (
        "midwest", "warn", 1, "we staff the Midwest")
    assert violation["sample"] == [{"id": 2, "name": "Bob", "state": "OH"}]
    assert [e["rule"] for e in out["errors"]] == ["ghost"]

    assert http.post("/v1/truth/check", json={"rules": TRUTH}).json() == out
    rows = lake.sql("SELECT rule, status, count, sample FROM truth_check(?)", [TRUTH]).fetchall()
    assert rows == [("midwest", "violated", 1, '[{"id": 2, "name": "Bob", "state": "OH"}]'),
                    ("ghost", "error", None, None), ("ids_positive", "passed", 0, None)]
    assert lake.query("SELECT rule FROM truth_check($1) WHERE status = 'passed'", [TRUTH]).rows == [["ids_positive"]]
    file = tmp_path / "truth.toml"
    file.write_text(TRUTH)
    assert cli_main(["truth", "check", str(file), "--root", str(lake.root)]) == 1  # not ok: exit 1
    assert json.loads(capsys.readouterr().out) == out
    file.write_text(TRUTH.split("[[rule]]\nname = \"ghost\"")[0])
    assert cli_main(["truth", "check", str(file), "--root", str(lake.root)]) == 0  # a warning alone is ok


@pytest.mark.parametrize("assertion", [
    "read_csv('/etc/passwd') IS NOT NULL",
    "getenv('HOME') IS NULL",
    "id IN (SELECT id FROM people)",
    "true; DROP TABLE people",
    "length(query('SELECT 1')) > 0",
])
def test_a_rule_that_would_write_or_read_files_is_refused_everywhere(lake, http, tmp_path, capsys, assertion):
    lake.ingest(PEOPLE, "people", filename="p.csv")
    rules = f'[[rule]]\nname = "sneaky"\ndataset = "people"\nassert = "{assertion}"\n'
    with pytest.raises(Forbidden):
        lake.ops.call("truth.check", rules=rules)
    resp = http.post("/v1/truth/check", json={"rules": rules})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "truth_rule_forbidden"
    with pytest.raises(Forbidden):
        lake.sql("SELECT * FROM truth_check(?)", [rules]).fetchall()
    file = tmp_path / "sneaky.toml"
    file.write_text(rules)
    assert cli_main(["truth", "check", str(file), "--root", str(lake.root)]) == 2
    assert "truth rule sneaky" in capsys.readouterr().err
    assert lake.sql("SELECT count(*) FROM people").fetchone()[0] == 2
