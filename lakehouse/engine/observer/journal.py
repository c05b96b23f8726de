"""The storage journal: failures that touched storage, and alerts, one JSON line each, in `<root>/_errors/`.

Kinds: `ingest_failed` (with the reason), `sidecar_missing` / `sidecar_corrupt` (found on load, then
rebuilt from the lake), `write_error` (an operation failed writing the lake or a sidecar), `rescued` (the
primary bucket could not be written: an ingest's rows went to the rescue bucket, see `engine/buckets.py`),
`drift_alert` (a drift measurement above its threshold: the op that measured it is the `code`). Written at
once (failures are rare and the journal must survive a crash that follows them); read by
`GET /storage/errors` and SQL `storage_errors()`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

import orjson

from lakehouse.engine.observer.files import DailyFiles
from lakehouse.engine.observer.ops import iso
from lakehouse.scrub import scrub

log = logging.getLogger(__name__)

KINDS = ("ingest_failed", "sidecar_missing", "sidecar_corrupt", "write_error", "rescued", "drift_alert")
COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "TIMESTAMP"), ("kind", "VARCHAR"), ("target", "VARCHAR"), ("code", "VARCHAR"), ("message", "VARCHAR"),
    ("details", "JSON"),
)


class StorageJournal:
    def __init__(self, root: Path, retention_days: int = 0) -> None:
        self.files = DailyFiles(root / "_errors", "storage", retention_days)
        self.files.ensure_today()
        self._lock = threading.Lock()

    def record(self, kind: str, target: str | None, message: str, *, code: str | None = None,
               **details: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
        item = {"ts": iso(dt.datetime.now(dt.UTC)), "kind": kind, "target": target, "code": code,
                "message": scrub(message)[:2000], "details": details or None}
        try:
            with self._lock:
                self.files.append([orjson.dumps(item, default=str)])
        except OSError as exc:  # the disk is what failed: the log is all that is left
            log.error("could not write the storage journal (%s): %s", exc, item)

    def recent(self, *, kind: str | None = None, since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first."""
        out = []
        for item in self.files.read(since[:10] if since else None, newest_first=True):
            if (kind is None or item.get("kind") == kind) and (since is None or (item.get("ts") or "") >= since):
                out.append(item)
                if len(out) >= limit:
                    break
        return out
