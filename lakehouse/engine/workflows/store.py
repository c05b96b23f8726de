"""Workflow runs in the lake: `lh.workflow_runs` (one row per run) and `lh.workflow_nodes` (one per node).

Every state change is its own lake transaction, so another connection (the HTTP layer, the CLI, a
second process) sees a run progress, and a run that dies leaves what it had finished for `resume`
(its status stays `running`; `claim` tells a dead run from a live one).
Times are UTC, taken by the runner when the thing happened (not when it was written). JSON columns
hold text: the run's input, a node's resolved input and output, and the op ids it produced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse.errors import Conflict, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

RUN_STATUSES = ("running", "succeeded", "failed")
NODE_STATUSES = ("pending", "running", "succeeded", "failed", "skipped")


@dataclasses.dataclass
class NodeRecord:
    node_id: str
    status: str = "pending"
    attempts: int = 0
    input: Any = None
    output: Any = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str | None = None  # for a skipped node: why (when_false, trigger_rule)
    error_message: str | None = None
    op_ids: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["started_at"], out["finished_at"] = _iso(self.started_at), _iso(self.finished_at)
        return out


@dataclasses.dataclass
class RunRecord:
    run_id: str
    workflow: str
    yaml_sha256: str
    status: str
    input: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    nodes: dict[str, NodeRecord]  # in workflow order when read back through WorkflowRunner

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs of the nodes that succeeded."""
        return {n: r.output for n, r in self.nodes.items() if r.status == "succeeded"}

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "workflow": self.workflow, "yaml_sha256": self.yaml_sha256,
                "status": self.status, "input": self.input, "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at), "error": self.error,
                "nodes": {n: r.to_dict() for n, r in self.nodes.items()}}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


# <root>/LOCKS/<sha256 of a run id>.lock is flock-ed while the run executes (see RunStore.claim)
LOCKS = ".workflow-locks"


class RunStore:
    """Reads and writes runs through the lake's own transaction helper (one writer of this process at a time)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    @contextlib.contextmanager
    def claim(self, run_id: str) -> Iterator[None]:
        """Hold `run_id` for one execution: a second one (a concurrent resume, in this process or another one on
        this machine) is a Conflict. The hold is an flock, which the OS drops when its holder dies: a run a crash
        left `running` can be resumed. (Processes on other machines sharing a catalog are not seen.)"""
        folder = self.ctx.location.root / LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(run_id.encode()).hexdigest()[:32]}.lock"  # any run id, never a path
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except BlockingIOError:
                os.close(fd)
                raise Conflict(f"workflow run {run_id!r} is running", code="run_active", run_id=run_id) from None
            except FileNotFoundError:
                pass
            os.close(fd)  # its holder removed the file as we opened it: lock the one there now
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # before unlocking: a waiting opener then sees another inode and retries
            os.close(fd)

    def _write(self, body: Any) -> None:
        with map_duckdb_errors(), self.ctx.fresh_cursor() as cur:
            self.ctx.transaction(cur, body)

    def create_run(self, run_id: str, workflow: str, sha256: str, inputs: Mapping[str, Any],
                   node_ids: Iterable[str], started_at: datetime) -> None:
        def body(c: duckdb.DuckDBPyConnection) -> None:
            c.execute("INSERT INTO lake.lh.workflow_runs VALUES (?, ?, ?, 'running', ?, ?, NULL, NULL)",
                      [run_id, workflow, sha256, _dump(dict(inputs)), started_at])
            c.executemany("INSERT INTO lake.lh.workflow_nodes (run_id, node_id, status, attempts, op_ids) "
                          "VALUES (?, ?, 'pending', 0, '[]')", [[run_id, n] for n in node_ids])
        self._write(body)

    def restart_run(self, run_id: str, rerun: Iterable[str]) -> None:
        """A failed (or interrupted) run back to running; the nodes in `rerun` back to pending, their last outcome cleared."""
        rerun = list(rerun)

        def body(c: duckdb.DuckDBPyConnection) -> None:
            c.execute("UPDATE lake.lh.workflow_runs SET status = 'running', finished_at = NULL, error = NULL "
                      "WHERE run_id = ?", [run_id])
            if rerun:
                c.execute("UPDATE lake.lh.workflow_nodes SET status = 'pending', attempts = 0, input = NULL, "
                          "output = NULL, started_at = NULL, finished_at = NULL, error_code = NULL, "
                          "error_message = NULL, op_ids = '[]' WHERE run_id = ? AND list_contains(?, node_id)",
                          [run_id, rerun])
        self._write(body)

    def node_running(self, run_id: str, rec: NodeRecord) -> None:
        """A node (re)starting an attempt: status, attempt count, resolved input, first start time."""
        self._write(lambda c: c.execute(
            "UPDATE lake.lh.workflow_nodes SET status = 'running', attempts = ?, input = ?, started_at = ? "
            "WHERE run_id = ? AND node_id = ?",
            [rec.attempts, _dump(rec.input), rec.started_at, run_id, rec.node_id]))

    def node_finished(self, run_id: str, rec: NodeRecord) -> None:
        self._write(lambda c: c.execute(
            "UPDATE lake.lh.workflow_nodes SET status = ?, attempts = ?, input = ?, output = ?, started_at = ?, "
            "finished_at = ?, error_code = ?, error_message = ?, op_ids = ? WHERE run_id = ? AND node_id = ?",
            [rec.status, rec.attempts, _dump(rec.input), _dump(rec.output), rec.started_at, rec.finished_at,
             rec.error_code, rec.error_message, json.dumps(rec.op_ids), run_id, rec.node_id]))

    def run_finished(self, run_id: str, status: str, finished_at: datetime, error: str | None) -> None:
        self._write(lambda c: c.execute(
            "UPDATE lake.lh.workflow_runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
            [status, finished_at, error, run_id]))

    def load(self, run_id: str) -> RunRecord | None:
        with map_duckdb_errors(), self.ctx.fresh_cursor() as cur:
            run = cur.execute("SELECT run_id, workflow, yaml_sha256, status, input, started_at, finished_at, error "
                              "FROM lake.lh.workflow_runs WHERE run_id = ?", [run_id]).fetchone()
            if run is None:
                return None
            rows = cur.execute("SELECT node_id, status, attempts, input, output, started_at, finished_at, "
                               "error_code, error_message, op_ids FROM lake.lh.workflow_nodes WHERE run_id = ?",
                               [run_id]).fetchall()
        nodes = {r[0]: NodeRecord(r[0], r[1], r[2], _load(r[3]), _load(r[4]), r[5], r[6], r[7], r[8],
                                  json.loads(r[9] or "[]")) for r in rows}
        return RunRecord(run[0], run[1], run[2], run[3], json.loads(run[4] or "{}"), run[5], run[6], run[7], nodes)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
