"""Daily JSONL files: `<folder>/<prefix>-YYYY-MM-DD.jsonl`, appended whole lines at a time, deleted after
`retention_days` (0 keeps them forever). Several processes may append to the same day's file: each
flush is one `write` on a file opened with O_APPEND."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


class DailyFiles:
    def __init__(self, folder: Path, prefix: str, retention_days: int = 0) -> None:
        self.folder = folder
        self.prefix = prefix
        self.retention_days = retention_days
        self._name = re.compile(rf"^{re.escape(prefix)}-(\d{{4}}-\d{{2}}-\d{{2}})\.jsonl$")
        self._last_day: str | None = None

    @property
    def glob(self) -> str:
        """What DuckDB's read_json reads: every day's file."""
        return str(self.folder / f"{self.prefix}-*.jsonl")

    def path(self, day: str) -> Path:
        return self.folder / f"{self.prefix}-{day}.jsonl"

    def ensure_today(self) -> None:
        """Today's file exists (empty if nothing was written): `read_json` over the glob needs one file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path(_today()).touch(exist_ok=True)

    def append(self, lines: list[bytes], day: str | None = None) -> None:
        day = day or _today()
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path(day).open("ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")
        if day != self._last_day:  # a new day: old files may now be past retention
            self._last_day = day
            self.prune()

    def days(self) -> list[str]:
        """The days with a file, oldest first."""
        if not self.folder.is_dir():
            return []
        found = (self._name.match(p.name) for p in self.folder.iterdir())
        return sorted(m.group(1) for m in found if m)

    def prune(self, today: dt.date | None = None) -> list[str]:
        """Delete files older than the retention; returns the days deleted."""
        if self.retention_days <= 0:
            return []
        cutoff = ((today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=self.retention_days)).isoformat()
        gone = []
        for day in self.days():
            if day < cutoff:
                try:
                    self.path(day).unlink()
                    gone.append(day)
                except OSError as exc:
                    log.warning("could not delete %s: %s", self.path(day), exc)
        return gone

    def read(self, since_day: str | None = None, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        """Every record of the files from `since_day` on; a damaged line (a crash mid-write) is skipped."""
        days = [d for d in self.days() if since_day is None or d >= since_day]
        for day in reversed(days) if newest_first else days:
            try:
                data = self.path(day).read_bytes()
            except OSError as exc:
                log.warning("could not read %s: %s", self.path(day), exc)
                continue
            lines = data.splitlines()
            for line in reversed(lines) if newest_first else lines:
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("skipping a damaged line in %s", self.path(day))
                    continue
                if isinstance(item, dict):
                    yield item


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()
