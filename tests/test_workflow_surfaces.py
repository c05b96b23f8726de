"""The workflow surfaces: the ops workflow.run / list / get, their HTTP routes and CLI commands; every class of
bad YAML as a 400 over HTTP and exit 2 over the CLI; resume after an injected failure; concurrent nodes; live
progress."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_servers import LLMServer, llm_fixture, srv_fixture  # noqa: F401
from rich.console import Console
from workflow_lakes import whttp_fixture, wlake_fixture  # noqa: F401

import lakehouse
from lakehouse.cli import main as cli_main
from lakehouse.engine.ops.workflow_ops import runner_for
from lakehouse.engine.workflows.progress import LiveProgress
from lakehouse.errors import Conflict, InvalidInput, NotFound

HELLO = textwrap.dedent("""
    name: hello
    description: Greets
    nodes:
      - {id: greet, mode: llm.chat, input: {model: ollama/m, prompt: "hello $input.who"}}
      - {id: shout, mode: sql.query, input: {sql: "SELECT upper(?) AS t", params: [$greet.output]},
         depends_on: [greet]}
""")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(wlake: lakehouse.Lake, srv: LLMServer) -> Path:
    """The lake's root, with a lakehouse.toml that sends a CLI's lake to the loopback LLM server too."""
    (wlake.root / "lakehouse.toml").write_text(f'embedder = "hash"\nkey_file = ""\nollama_base = "{srv.url}"\n'
                                               "[models.policy]\nretries = 0\ncooldown_failures = 0\n")
    return wlake.root


# -- the ops ---------------------------------------------------------------------------------------

def test_run_by_name_list_and_get(wlake: lakehouse.Lake, srv: LLMServer) -> None:
    folder = wlake.root / "workflows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(HELLO)
    (folder / "broken.yaml").write_text("name: broken\nnodes: []\n")
    out = wlake.ops.call("workflow.run", workflow="hello", input={"who": "ann"})
    assert out["status"] == "succeeded" and out["workflow"] == "hello"
    assert out["nodes"]["shout"]["output"]["rows"] == [["ECHO: HELLO ANN"]]
    assert set(out["nodes"]["greet"]) == {"status", "output", "attempts", "error", "reason", "op_ids", "started_at",
                                          "finished_at"}
    listed = {w["name"]: w for w in wlake.ops.call("workflow.list")}
    assert listed["hello"] == {"name": "hello", "source": "lake", "description": "Greets", "nodes": ["greet", "shout"],
                               "inputs": ["who"], "error": None}
    assert listed["broken"]["error"]["code"] == "invalid_workflow" and listed["broken"]["nodes"] == []
    assert {"lakehouse-architect-review", "knowledge-pipeline", "pr-audit", "scrum-review"} <= {
        n for n, w in listed.items() if w["source"] == "shipped" and w["error"] is None}
    assert wlake.ops.call("workflow.get", run_id=out["run_id"]) == out
    with pytest.raises(NotFound, match="no workflow named 'nope'") as info:
        wlake.ops.call("workflow.run", workflow="nope")
    assert info.value.code == "workflow_not_found"
    with pytest.raises(NotFound, match="no workflow run"):
        wlake.ops.call("workflow.get", run_id="0" * 32)


def test_a_lake_workflow_wins_over_a_shipped_one(wlake: lakehouse.Lake) -> None:
    (wlake.root / "workflows").mkdir()
    (wlake.root / "workflows" / "pr-audit.yaml").write_text("name: mine\nnodes: [{id: a, mode: dataset.list}]\n")
    assert wlake.ops.call("workflow.run", workflow="pr-audit")["workflow"] == "mine"
    assert {w["name"]: w["source"] for w in wlake.ops.call("workflow.list")}["pr-audit"] == "lake"


def test_a_lake_workflow_that_cannot_load_is_listed_with_why(wlake: lakehouse.Lake) -> None:
    """A file of <root>/workflows that nests too deeply for the YAML parser is one entry's error, not a failed list."""
    (wlake.root / "workflows").mkdir()
    (wlake.root / "workflows" / "deep.yaml").write_text("name: deep\nnodes: " + "[" * 5000 + "\n")
    entry = {w["name"]: w for w in wlake.ops.call("workflow.list")}["deep"]
    assert entry["error"] == {"code": "invalid_workflow", "message": "workflow: the YAML nests too deeply"}


def test_http_run_list_get(whttp: httpx.Client) -> None:
    resp = whttp.post("/v1/observer/workflow/run", json={"workflow": HELLO, "input": {"who": "bo"}})
    assert resp.status_code == 200, resp.text
    run = resp.json()
    assert run["status"] == "succeeded" and run["nodes"]["greet"]["output"] == "echo: hello bo"
    got = whttp.get(f"/v1/observer/workflow/runs/{run['run_id']}")
    assert got.status_code == 200 and got.json() == run
    names = [w["name"] for w in whttp.get("/v1/observer/workflow/list").json()["workflows"]]
    assert "knowledge-pipeline" in names
    missing = whttp.get("/v1/observer/workflow/runs/" + "0" * 32)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
    bad = whttp.get("/v1/observer/workflow/runs/nope")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "run_id"
    unknown = whttp.post("/v1/observer/workflow/run", json={"workflow": HELLO, "inputs": {}})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_field"
    missing_input = whttp.post("/v1/observer/workflow/run", json={"workflow": HELLO})
    assert missing_input.status_code == 400 and missing_input.json()["error"]["code"] == "missing_input"


# -- bad YAML: a 400 naming the problem over HTTP, exit 2 and one line over the CLI -----------------------

BAD = {
    "malformed": ("name: x\nnodes: [{id: a\n", "malformed YAML at line"),
    "not_a_mapping": ("- a\n- b\n", "must be a mapping with name and nodes"),
    "missing_name": ("nodes: [{id: a, mode: dataset.list}]\n", "field 'name': is required"),
    "no_nodes": ("name: x\nnodes: []\n", "must be a non-empty list of nodes"),
    "unknown_field": ("name: x\nnods: []\n", "field 'nods': unknown field"),
    "bad_node_id": ("name: x\nnodes: [{id: 'a b', mode: dataset.list}]\n", "nodes[0].id must be a name"),
    "duplicate_id": ("name: x\nnodes: [{id: a, mode: dataset.list}, {id: a, mode: corpus.list}]\n",
                     "duplicate node id"),
    "archon_bash": ("name: x\nnodes: [{id: a, bash: ls}]\n", "Archon's 'bash' nodes are not supported"),
    "prompt_and_mode": ("name: x\nnodes: [{id: a, mode: dataset.list, prompt: hi}]\n", "exactly one of"),
    "unknown_mode": ("name: x\nnodes: [{id: a, mode: nope.op}]\n", "unknown mode 'nope.op'"),
    "no_model": ("name: x\nnodes: [{id: a, prompt: hi}]\n", "a prompt node needs a model"),
    "unknown_dependency": ("name: x\nnodes: [{id: a, mode: dataset.list, depends_on: [b]}]\n", "unknown node 'b'"),
    "cycle": ("name: x\nnodes: [{id: a, mode: dataset.list, depends_on: [b]}, {id: b, mode: dataset.list, "
              "depends_on: [a]}]\n", "cycle: "),
    "not_upstream": ("name: x\nnodes: [{id: a, mode: dataset.list}, {id: b, mode: dataset.describe, "
                     "input: {name: $a.output}}]\n", "which is not upstream of 'b'"),
    "bad_when": ("name: x\nnodes: [{id: a, mode: dataset.list, when: '$input.x =='}]\n", "field 'when'"),
    "bad_retry": ("name: x\nnodes: [{id: a, mode: dataset.list, retry: {max_attempts: 9}}]\n",
                  "max_attempts must be an integer from 1 to 5"),
    "input_schema": ("name: x\nnodes: [{id: a, mode: sql.query, input: {sql: 5}}]\n",
                     "does not match mode 'sql.query'"),
    "bad_output_schema": ("name: x\nnodes: [{id: a, mode: dataset.list, output_schema: {type: 5}}]\n",
                          "field 'output_schema': is not a valid JSON schema"),
    "too_big": ("name: x\n# " + "x" * 1_000_001 + "\nnodes: [{id: a, mode: dataset.list}]\n", "the limit is"),
    "too_deep": ("name: x\nnodes: " + "[" * 5000 + "\n", "the YAML nests too deeply"),  # was a 500 (RecursionError)
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_yaml_is_a_400_naming_the_problem(whttp: httpx.Client, case: str) -> None:
    text, message = BAD[case]
    resp = whttp.post("/v1/observer/workflow/run", json={"workflow": text})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_workflow" and message in error["message"]


@pytest.mark.parametrize("case", list(BAD))
def test_bad_yaml_is_exit_2_and_one_line(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         case: str) -> None:
    text, message = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    code, out, err = cli(capsys, "workflow", "run", str(path), "--root", str(root))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_cli_refuses_a_missing_file_and_a_bad_input(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "workflow", "run", "nowhere.yaml", "--root", str(root))
    assert code == 2 and err == "error: no such workflow file: 'nowhere.yaml'\n"
    with pytest.raises(SystemExit) as info:
        cli_main(["workflow", "run", "hello", "--input", "novalue", "--root", str(root)])
    assert info.value.code == 2 and "expected KEY=VALUE" in capsys.readouterr().err


# -- the CLI, resume after an injected failure ---------------------------------------------------------

FLAKY = textwrap.dedent("""
    name: flaky
    nodes:
      - {id: count, mode: sql.query, input: {sql: "SELECT $input.n + 1 AS n"}}
      - {id: ask, mode: llm.chat, input: {model: ollama/m, prompt: "n is $count.output.rows.0.0"}, depends_on: [count]}
      - {id: side, mode: dataset.list}
      - {id: done, mode: sql.query, input: {sql: "SELECT length(?) AS l", params: [$ask.output]},
         depends_on: [ask, side]}
""")


def test_resume_after_an_injected_failure(wlake: lakehouse.Lake, srv: LLMServer) -> None:
    srv.fail(500)  # the LLM's first answer fails (the lake's policy: no retries)
    first = wlake.ops.call("workflow.run", workflow=FLAKY, input={"n": 41})
    assert first["status"] == "failed" and "node 'ask' failed" in first["error"]
    assert {n: v["status"] for n, v in first["nodes"].items()} == {
        "count": "succeeded", "ask": "failed", "side": "succeeded", "done": "skipped"}
    assert first["nodes"]["ask"]["error"]["code"] == "provider_error"
    assert first["nodes"]["done"]["reason"]["code"] == "trigger_rule"
    second = wlake.ops.call("workflow.run", workflow=FLAKY, resume=first["run_id"])
    assert second["run_id"] == first["run_id"] and second["status"] == "succeeded"
    assert second["nodes"]["ask"]["output"] == "echo: n is 42" and second["nodes"]["done"]["output"]["rows"] == [[13]]
    for reused in ("count", "side"):  # not run again: the same op ids, and no second record
        assert second["nodes"][reused]["op_ids"] == first["nodes"][reused]["op_ids"]
    assert sum(o.op == "dataset.list" for o in wlake.observer.ops) == 1
    assert len(srv.requests) == 2
    with pytest.raises(Conflict, match="only a failed or interrupted run can be resumed"):
        wlake.ops.call("workflow.run", workflow=FLAKY, resume=first["run_id"])


SLOW = textwrap.dedent("""
    name: slow
    nodes:
      - {id: quick, mode: sql.query, input: {sql: "SELECT 1 AS x"}}
      - {id: counting, mode: sql.query, depends_on: [quick],
         input: {sql: "SELECT count(*) AS c FROM gate g, range(g.n) t(i) WHERE i % 7 = 3"}}
""")
_CHILD = """
import sys, lakehouse
from lakehouse.engine.ops.workflow_ops import runner_for
lake = lakehouse.open(sys.argv[1], embedder="hash")
runner_for(lake).run(sys.stdin.read(), {}, on_node=lambda r: print(r.node_id, r.status, flush=True))
"""


def _gate(lake: lakehouse.Lake, n: int) -> None:
    lake.ops.call("dataset.ingest", source=json.dumps({"n": n}).encode(), dataset="gate", format="ndjson",
                  mode="replace")


def test_a_run_whose_process_died_resumes_and_a_live_one_does_not(wlake: lakehouse.Lake) -> None:
    """A process killed in the middle of a node leaves its run `running`: that run resumes (its finished nodes
    reused). While the process lives, resuming it is a Conflict (run_active). Before, a killed run was `running`
    for ever and refused every resume."""
    _gate(wlake, 10**15)  # counting never ends
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(wlake.root)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        child.stdin.write(SLOW)
        child.stdin.close()
        heard = [child.stdout.readline().split() for _ in range(3)]
        assert heard == [["quick", "running"], ["quick", "succeeded"], ["counting", "running"]]
        [run_id] = _run_ids(wlake)
        with pytest.raises(Conflict, match="is running") as info:
            wlake.ops.call("workflow.run", workflow=SLOW, resume=run_id)
        assert info.value.code == "run_active"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    died = wlake.ops.call("workflow.get", run_id=run_id)
    assert died["status"] == "running" and died["nodes"]["counting"]["status"] == "running"
    with pytest.raises(Conflict, match="was made from another YAML"):
        wlake.ops.call("workflow.run", workflow=SLOW.replace("% 7", "% 8"), resume=run_id)
    _gate(wlake, 1000)
    resumed = wlake.ops.call("workflow.run", workflow=SLOW, resume=run_id)
    assert resumed["run_id"] == run_id and resumed["status"] == "succeeded"
    assert resumed["nodes"]["quick"]["op_ids"] == died["nodes"]["quick"]["op_ids"]  # reused, not run again
    assert resumed["nodes"]["counting"]["output"]["rows"] == [[143]]
    assert not any((wlake.root / ".workflow-locks").iterdir())  # each claim's file goes with it


def _run_ids(lake: lakehouse.Lake) -> list[str]:
    with lake.ctx.fresh_cursor() as cur:
        return [r[0] for r in cur.execute("SELECT run_id FROM lake.lh.workflow_runs").fetchall()]


def test_cli_run_fail_and_resume(root: Path, tmp_path: Path, srv: LLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flaky.yaml"
    path.write_text(FLAKY)
    srv.fail(500)
    code, out, err = cli(capsys, "workflow", "run", str(path), "--input", "n=41", "--root", str(root))
    assert code == 1 and "run " in out and ": failed" in out
    run_id = out.strip().split("run ")[-1].split(":")[0]
    assert err == f"resume with: lakehouse workflow run {path} --resume {run_id}\n"
    code, out, err = cli(capsys, "workflow", "run", str(path), "--resume", run_id, "--json", "--root", str(root))
    run = json.loads(out)
    assert code == 0 and err == "" and run["status"] == "succeeded" and run["run_id"] == run_id
    code, out, _ = cli(capsys, "workflow", "get", run_id, "--root", str(root))
    assert code == 0 and f"run {run_id}: succeeded" in out and "echo: n is 42" in out
    code, out, _ = cli(capsys, "workflow", "list", "--root", str(root))
    assert code == 0 and "knowledge-pipeline" in out


def test_cli_input_values_are_json_or_text(root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "echo.yaml"
    path.write_text("name: echo\nnodes: [{id: a, mode: dataset.list, when: '$input.v.1 == 2'}, "
                    "{id: b, mode: sql.query, input: {sql: 'SELECT ? AS t', params: [$input.t]}}]")
    code, out, _ = cli(capsys, "workflow", "run", str(path), "--input", 'v=["x", 2]', "--input", "t=two words=yes",
                       "--json", "--root", str(root))
    run = json.loads(out)
    assert code == 0, run["error"]
    assert run["input"] == {"v": ["x", 2], "t": "two words=yes"}
    assert run["nodes"]["a"]["status"] == "succeeded" and run["nodes"]["b"]["output"]["rows"] == [["two words=yes"]]


# -- concurrency and progress --------------------------------------------------------------------------

def test_independent_nodes_run_concurrently_through_the_op(wlake: lakehouse.Lake, srv: LLMServer) -> None:
    # each answer waits for the other request to arrive: only concurrent nodes get "together" twice
    barrier = threading.Barrier(2, timeout=30)

    def meet(messages: list[dict[str, Any]]) -> str:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return "alone"
        return "together"

    srv.reply_fn = meet
    out = wlake.ops.call("workflow.run", max_parallel=2, workflow=textwrap.dedent("""
        name: pair
        nodes:
          - {id: a, mode: llm.chat, input: {model: ollama/m, prompt: a}}
          - {id: b, mode: llm.chat, input: {model: ollama/m, prompt: b}}
          - {id: c, mode: sql.query, input: {sql: "SELECT ? || ?", params: [$a.output, $b.output]}, depends_on: [a, b]}
    """))
    assert out["nodes"]["c"]["output"]["rows"] == [["togethertogether"]]
    a, b = out["nodes"]["a"], out["nodes"]["b"]
    assert a["started_at"] <= b["finished_at"] and b["started_at"] <= a["finished_at"]


def test_live_progress_shows_each_node(wlake: lakehouse.Lake) -> None:
    runner = runner_for(wlake)
    wf = runner.load("name: shown\nnodes: [{id: first, mode: dataset.list}, {id: second, mode: nope.nope}]"
                     .replace("nope.nope", "dataset.describe, input: {name: gone}, depends_on: [first]"))
    screen = io.StringIO()
    with LiveProgress(wf, Console(file=screen, force_terminal=True, width=120)) as show:
        runner.run(wf, {}, on_node=show)
    text = screen.getvalue()
    assert "workflow shown" in text and "✓ succeeded" in text and "✗ failed" in text
    assert "no dataset named 'gone'" in text
    # redrawn as nodes started: the running state was on screen before the end
    assert "… running" in text


def test_cli_progress(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("name: two\nnodes: [{id: alpha, mode: dataset.list}, {id: beta, mode: corpus.list}]\n")
    code, _, err = cli(capsys, "workflow", "run", str(path), "--progress", "--root", str(root))
    assert code == 0 and "alpha" in err and "beta" in err and "succeeded" in err
    code, _, err = cli(capsys, "workflow", "run", str(path), "--root", str(root))
    assert code == 0 and err == ""  # not a terminal: no progress unless asked


def test_bad_run_arguments(wlake: lakehouse.Lake) -> None:
    with pytest.raises(InvalidInput, match="max_parallel") as info:
        wlake.ops.call("workflow.run", workflow=HELLO, input={"who": "x"}, max_parallel=0)
    assert info.value.code == "invalid_max_parallel"
    with pytest.raises(InvalidInput, match="resume"):
        wlake.ops.call("workflow.run", workflow=HELLO, resume="not-a-run")


def test_the_readme_example_runs_as_shown(whttp: httpx.Client, wlake: lakehouse.Lake, srv: LLMServer) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("```yaml\n# triage.yaml\n", 1)[1].split("```", 1)[0]
    wlake.create_corpus("tickets", rows=[{"id": 17, "text": "Export to CSV loses the final row"},
                                         {"id": 18, "text": "How do I reset my password?"}])
    srv.reply_fn = lambda messages: ('{"kind": "bug", "summary": "CSV export drops the last row"}'
                                     if messages[-1]["content"].startswith("Classify") else "Thanks for the report.")
    run = whttp.post("/v1/observer/workflow/run", json={
        "workflow": example, "input": {"ticket": "My CSV export is missing the last line!"}}).json()
    assert run["status"] == "succeeded" and run["nodes"]["classify"]["output"]["kind"] == "bug"
    assert run["nodes"]["similar"]["output"]["results"][0]["id"] == "17"
    assert run["nodes"]["draft"]["output"] == "Thanks for the report."
    shown = readme.split("; trimmed):\n\n```json\n", 1)[1].split("```", 1)[0]
    assert all(f'"{key}":' in shown for key in [*run, *run["nodes"]["classify"]])  # the README names every field
