"""ObservedOps: one record per operation call, in a ring buffer and in daily JSONL files.

Recording costs a deque append and a list append on the caller's path; a background flush (every
second, or at close) serialises the pending records with orjson and appends them to
`<root>/observer/ops-YYYY-MM-DD.jsonl` (UTC day of the op's start). Old files are deleted after
`observer_retention_days`. Listing and statistics read the ring buffer first and, past it, the files.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from lakehouse.engine.observer.files import DailyFiles

log = logging.getLogger(__name__)

# Columns of the JSONL files, in the order `observer_ops()` returns them (DuckDB read_json types).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "VARCHAR"), ("ts", "TIMESTAMP"), ("op", "VARCHAR"), ("origin", "VARCHAR"), ("duration_ms", "DOUBLE"),
    ("ok", "BOOLEAN"), ("error_code", "VARCHAR"), ("error", "VARCHAR"), ("rows", "BIGINT"), ("input", "JSON"),
    ("output", "JSON"), ("profile", "VARCHAR"), ("workflow", "VARCHAR"), ("run_id", "VARCHAR"), ("node", "VARCHAR"),
)


@dataclasses.dataclass(slots=True)
class ObservedOp:
    id: str
    ts: str  # start, ISO 8601 UTC with milliseconds: sorts as text
    op: str
    origin: str
    duration_ms: float
    ok: bool
    error_code: str | None = None
    error: str | None = None
    rows: int | None = None
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    profile: str | None = None
    workflow: str | None = None
    run_id: str | None = None
    node: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _ in COLUMNS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObservedOp:
        return cls(**{name: d.get(name) for name, _ in COLUMNS})


class Observer:
    """The lake's record of operations. `record` is called by the operations catalog, never by a surface."""

    def __init__(self, folder: Path, *, write: bool = True, capacity: int = 10_000, retention_days: int = 0,
                 flush_every_s: float = 1.0) -> None:
        self.ops: collections.deque[ObservedOp] = collections.deque(maxlen=max(capacity, 1))
        # the files are read (and today's exists, for SQL's observer_ops()) even when this lake does not log
        self.files = DailyFiles(folder, "ops", retention_days)
        self._write = write
        self.enabled = True  # benchmarks switch recording off to measure what it costs
        self.listeners: list[Callable[[ObservedOp], None]] = []  # e.g. the OTLP exporter
        self._pending: list[ObservedOp] = []
        self._lock = threading.Lock()
        self._flush_every_s = flush_every_s
        self._timer: threading.Timer | None = None
        self._closed = False
        self.files.ensure_today()
        if write:
            self.files.prune()

    def record(self, item: ObservedOp) -> None:
        if not self.enabled:
            return
        self.ops.append(item)
        for listener in self.listeners:
            try:
                listener(item)
            except Exception:  # noqa: BLE001 - a tracing backend never fails an operation
                log.warning("an op listener failed", exc_info=True)
        if self._write and not self._closed:
            with self._lock:
                self._pending.append(item)
                if self._timer is None:
                    self._timer = threading.Timer(self._flush_every_s, self.flush)
                    self._timer.daemon = True
                    self._timer.start()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not pending:
            return
        by_day: dict[str, list[bytes]] = {}
        for item in pending:
            by_day.setdefault(item.ts[:10], []).append(_line(item))
        try:
            for day, lines in by_day.items():
                self.files.append(lines, day)
        except OSError as exc:  # the log is a record, never a reason to fail an operation
            log.warning("could not append to the op log in %s: %s", self.files.folder, exc)

    def close(self) -> None:
        self.flush()
        self._closed = True

    # -- reading ---------------------------------------------------------------------------
    def recent(self, n: int = 100, op: str | None = None) -> list[ObservedOp]:
        """The last `n` ops of this process (oldest first), optionally of one op name."""
        items = [o for o in list(self.ops) if op is None or o.op == op]
        return items[-n:] if n else []

    def _all(self, since: str | None, newest_first: bool) -> Iterator[dict[str, Any]]:
        """This process's ring buffer, then the files for what the buffer no longer (or never) held."""
        buffered = list(self.ops)
        seen = {o.id for o in buffered}
        ordered = sorted(buffered, key=lambda o: o.ts, reverse=newest_first)
        yield from (o.to_dict() for o in ordered)
        self.flush()
        for item in self.files.read(since[:10] if since else None, newest_first=newest_first):
            if item.get("id") not in seen:
                yield item

    def query(self, *, op: str | None = None, origin: str | None = None, status: str | None = None,
              since: str | None = None, until: str | None = None, limit: int = 100,
              exclude_origin: str | None = None, profile: str | None = None) -> list[dict[str, Any]]:
        """Ops matching every given filter, newest first (`since`/`until`: ISO timestamps, UTC); `profile`: only the
        ops of that profile."""
        want_ok = None if status is None else status == "ok"
        out = [o for o in self._all(since, newest_first=True)
               if (op is None or o.get("op") == op) and (origin is None or o.get("origin") == origin)
               and (exclude_origin is None or o.get("origin") != exclude_origin)
               and (profile is None or o.get("profile") == profile)
               and (want_ok is None or o.get("ok") is want_ok) and _within(o.get("ts"), since, until)]
        out.sort(key=lambda o: o.get("ts") or "", reverse=True)
        return out[:limit]

    def stats(self, window_s: float, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Per (op, origin) over the last `window_s` seconds: count, errors, error rate, p50/p95/p99 ms."""
        now = now or dt.datetime.now(dt.UTC)
        since = iso(now - dt.timedelta(seconds=window_s))
        groups: dict[tuple[str, str], list[tuple[float, bool]]] = {}
        for o in self._all(since, newest_first=False):
            if _within(o.get("ts"), since, iso(now)):
                groups.setdefault((o.get("op") or "", o.get("origin") or ""), []).append(
                    (float(o.get("duration_ms") or 0.0), bool(o.get("ok"))))
        return [summarise(op, origin, values) for (op, origin), values in sorted(groups.items())]


def summarise(op: str, origin: str, values: Iterable[tuple[float, bool]]) -> dict[str, Any]:
    values = list(values)
    durations = np.array([d for d, _ in values], dtype=np.float64)
    errors = sum(1 for _, ok in values if not ok)
    # linear interpolation between closest ranks: what DuckDB's quantile_cont gives
    p50, p95, p99 = (float(x) for x in np.percentile(durations, [50, 95, 99])) if len(durations) else (0.0,) * 3
    return {"op": op, "origin": origin, "count": len(values), "errors": errors,
            "error_rate": round(errors / len(values), 6) if values else 0.0,
            "p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3)}


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _within(ts: str | None, since: str | None, until: str | None) -> bool:
    if ts is None:
        return False
    return (since is None or ts >= since) and (until is None or ts <= until)


def _line(item: ObservedOp) -> bytes:
    """One JSON line; a value orjson refuses (a summary is already plain data, so this is a last resort)
    is written as its text rather than losing the record."""
    try:
        return orjson.dumps(item.to_dict(), default=str)
    except TypeError:
        return json.dumps(item.to_dict(), default=str, ensure_ascii=False).encode("utf-8", "backslashreplace")
