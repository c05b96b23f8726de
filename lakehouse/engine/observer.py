"""Operation recording: the seam every engine operation passes through.

`Observer.observe(op, source=..., target=...)` times a block and records one `ObservedOp`
into an in-memory ring buffer and, buffered, into `<root>/observer/ops.jsonl`. The file is
appended by a background flush (every second or when the buffer fills), so recording costs a
deque append on the hot path.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ObservedOp:
    ts: str
    op: str
    source: str
    target: str | None
    rows: int | None
    elapsed_ms: float
    ok: bool
    error: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class OpRecord:
    """Mutable handle yielded by `observe`: set `rows` and `extra` inside the block."""

    __slots__ = ("rows", "extra")

    def __init__(self) -> None:
        self.rows: int | None = None
        self.extra: dict[str, Any] = {}


class Observer:
    def __init__(self, log_path: Path | None, capacity: int = 10_000, flush_every_s: float = 1.0) -> None:
        self.ops: collections.deque[ObservedOp] = collections.deque(maxlen=capacity)
        self._path = log_path
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._flush_every_s = flush_every_s
        self._timer: threading.Timer | None = None
        self._closed = False

    @contextlib.contextmanager
    def observe(self, op: str, *, source: str = "python", target: str | None = None) -> Iterator[OpRecord]:
        rec = OpRecord()
        t0 = time.perf_counter()
        try:
            yield rec
        except BaseException as exc:
            self.record(op, source=source, target=target, rows=rec.rows,
                        elapsed_ms=(time.perf_counter() - t0) * 1000, ok=False,
                        error=f"{type(exc).__name__}: {exc}"[:500], extra=rec.extra)
            raise
        self.record(op, source=source, target=target, rows=rec.rows,
                    elapsed_ms=(time.perf_counter() - t0) * 1000, ok=True, extra=rec.extra)

    def record(self, op: str, *, source: str, target: str | None, rows: int | None,
               elapsed_ms: float, ok: bool, error: str | None = None,
               extra: dict[str, Any] | None = None) -> ObservedOp:
        item = ObservedOp(datetime.now(UTC).isoformat(timespec="milliseconds"), op, source,
                          target, rows, round(elapsed_ms, 3), ok, error, dict(extra or {}))
        self.ops.append(item)
        if self._path is not None and not self._closed:
            line = json.dumps(item.to_dict(), default=str)
            with self._lock:
                self._pending.append(line)
                if self._timer is None:
                    self._timer = threading.Timer(self._flush_every_s, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
        return item

    def recent(self, n: int = 100, op: str | None = None) -> list[ObservedOp]:
        items = [o for o in list(self.ops) if op is None or o.op == op]
        return items[-n:]

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not lines or self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        except OSError as exc:  # the log is a record, never a reason to fail an operation
            log.warning("could not append to %s: %s", self._path, exc)

    def close(self) -> None:
        self.flush()
        self._closed = True
