"""The command line: each subcommand, and errors as one line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lakehouse.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_sql_datasets_compact(tmp_path, capsys, write):
    root = str(tmp_path / "lake")
    path = write("w.csv", "id,name,state\n1,Ann,IL\n2,Bob,WI\n")
    code, out, _ = run(capsys, "ingest", str(path), "--dataset", "workers", "--root", root)
    assert code == 0 and "workers: 2 rows" in out
    code, out, _ = run(capsys, "ingest", str(path), "--dataset", "workers", "--root", root)
    assert code == 0 and "skipped" in out
    code, out, _ = run(capsys, "sql", "SELECT name FROM workers ORDER BY id", "--format", "json", "--root", root)
    assert code == 0 and json.loads(out) == [{"name": "Ann"}, {"name": "Bob"}]
    code, out, _ = run(capsys, "sql", "SELECT id, name FROM workers ORDER BY id", "--format", "csv", "--root", root)
    assert out.splitlines() == ["id,name", "1,Ann", "2,Bob"]
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM workers", "--root", root)
    assert code == 0 and "n" in out and "2" in out
    # table cells are text, not rich markup: this used to raise MarkupError
    code, out, _ = run(capsys, "sql", "SELECT '[/x] and [bold]b' AS \"[red]c\"", "--root", root)
    assert code == 0 and "[/x] and [bold]b" in out and "[red]c" in out
    delta = write("d.csv", "id,name,state\n2,Bobby,WI\n")
    assert run(capsys, "ingest", str(delta), "--dataset", "workers", "--mode", "delta", "--key", "id",
               "--root", root)[0] == 0
    code, out, _ = run(capsys, "datasets", "--root", root)
    assert "workers" in out and "merge" in out
    code, out, _ = run(capsys, "compact", "workers", "--root", root)
    assert code == 0 and "folded 1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sql", "DROP TABLE workers"], "error: DROP statements are not allowed"),
        (["sql", "SELECT * FROM nowhere"], "error: Table with name nowhere does not exist"),
        (["ingest", "/no/such/file.csv", "--dataset", "w"], "error: no such file"),
        (["ingest", "{empty}", "--dataset", "w"], "error: "),
        (["ingest", "{empty}", "--dataset", "Bad-Name"], "error: invalid dataset name"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, write, argv, message):
    empty = write("empty.csv", "")
    argv = [a.replace("{empty}", str(empty)) for a in argv] + ["--root", str(tmp_path / "lake")]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lakehouse", "sql", "SELECT 40 + 2 AS answer", "--format", "json",
                           "--root", str(tmp_path / "lake")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"answer": 42}]


def test_demo_small(tmp_path, capsys):
    from rich.console import Console

    from lakehouse.engine.demo import run_demo

    console = Console(record=True, width=160)
    out = run_demo(tmp_path / "demo", rows=5_000, corpus_rows=300, console=console)
    text = console.export_text()
    assert out["counts"]["workers"] == 5_000 and out["counts"]["workers_delta"] > 0
    assert out["counts"]["workers_corpus"] == 300
    assert "Forklift operators with OSHA-10 in IL" in text and "Chicago" in text
    # a delta into the followed dataset reaches search in the same ingest: the updated worker ranks first
    assert "A delta reaches search" in text and out["counts"]["followed_update_rank"] == 1
    hybrid = text[text.index("Hybrid SQL + vector"):]
    assert "Forklift Operator" in hybrid.split("\n", 6)[-1]  # the best hit is a forklift operator
    # a second run over the same lake works (replace + delta again) and answers the same
    again = run_demo(tmp_path / "demo", rows=5_000, corpus_rows=300, console=Console(record=True, width=160))
    assert again["counts"] == out["counts"]


# the commands added with the catalog's later ops: an option left out is the operation's default, never a copy
OP_COMMANDS = [["drift", "playbooks"], ["drift", "embeddings", "c", "--a", "1", "--b", "2"], ["drift", "audit"],
               ["distill", "collect"], ["distill", "export", "--out", "x"], ["pathways", "lookup", "t"],
               ["truth", "check", "f"], ["rules", "check", "d"], ["profile", "create", "p"], ["journal"]]


@pytest.mark.parametrize("argv", OP_COMMANDS, ids=[" ".join(a[:2]) for a in OP_COMMANDS])
def test_options_left_out_take_the_operations_defaults(argv: list[str]) -> None:
    from lakehouse.cli import build_parser
    from lakehouse.engine.ops import CATALOG

    args = vars(build_parser().parse_args(argv))
    fields = {f for op in CATALOG for f, info in op.input.model_fields.items() if not info.is_required()}
    copied = {k: v for k, v in args.items() if k in fields and v not in (None, False)
              and k not in ("a", "b", "out", "name", "text", "file", "dataset", "corpus")}
    assert copied == {}, f"defaults written in the CLI instead of the operation: {copied}"
