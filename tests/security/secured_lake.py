"""A lake worth attacking, shared by a module's tests: a dataset, a corpus built from it, an upload waiting in
staging, an index sidecar, a lakehouse.toml and observer logs, served over HTTP on loopback. `state()` is
what no refused query may change: snapshots, DuckLake options and every file under the root but the
observer's logs (which record the refusals) and SQLite's -wal/-shm files (the catalog's own state is
in the snapshots and options)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import httpx

import lakehouse

WORKERS = b"id,name,role,state\n1,Ann,Forklift Operator,IL\n2,Bob,Pastry Chef,WI\n3,Cy,Forklift Driver,IL\n"


@dataclasses.dataclass
class Target:
    lake: lakehouse.Lake
    http: httpx.Client
    places: dict[str, str]

    @property
    def root(self) -> Path:
        return self.lake.root

    def fill(self, text: str) -> str:
        for key, value in self.places.items():
            text = text.replace("{" + key + "}", value)
        return text

    def state(self) -> dict[str, Any]:
        snapshots = self.lake.sql("SELECT count(*), max(snapshot_id) FROM ducklake_snapshots('lake')").fetchall()
        options = self.lake.sql("SELECT option_name, value, scope, scope_entry FROM ducklake_options('lake') "
                                "ORDER BY ALL").fetchall()
        files = {str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in sorted(self.root.rglob("*"))
                 if p.is_file() and "observer" not in p.relative_to(self.root).parts
                 and not p.name.endswith(("-shm", "-wal"))}  # SQLite's own housekeeping: readers touch them
        return {"snapshots": snapshots, "options": options, "files": files}

    def healthy(self) -> None:
        """The process still answers, over Python and HTTP, with the lake's data as it was."""
        assert self.lake.query("SELECT count(*) FROM workers").rows == [[3]]
        assert self.http.get("/health").status_code == 200
