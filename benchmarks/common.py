"""Helpers shared by the benchmarks: timing, statistics, comparisons, the table, temp dirs, JSON."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

import lakehouse

log = logging.getLogger("benchmarks")


# -- timing ------------------------------------------------------------------------------
def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of `fn` took, and what it returned."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def repeat_timed(fn: Callable[[], Any], repeat: int, warmup: int = 0) -> list[float]:
    """Seconds of `repeat` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    return [time_call(fn)[0] for _ in range(repeat)]


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int = 0) -> dict[str, list[float]]:
    """Time several functions round-robin (a, b, a, b, ...) so machine noise hits them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeat):
        names = list(fns) if i % 2 == 0 else list(reversed(fns))  # alternate who goes first
        for name in names:
            samples[name].append(time_call(fns[name])[0])
    return samples


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def percentile(samples: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100); p50 is the median."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo))


def p50(samples: Sequence[float]) -> float:
    return percentile(samples, 50)


# -- comparisons -------------------------------------------------------------------------
@dataclasses.dataclass
class Comparison:
    """One measurement of Lakehouse against a peer: ratio = subject / peer, passing if <= target."""

    name: str
    subject: str
    subject_samples: list[float]
    peer: str
    peer_samples: list[float]
    target: float | None
    stat: str = "median"  # "median" or "p50"
    note: str = ""

    @property
    def subject_s(self) -> float:
        return _stat(self.stat, self.subject_samples)

    @property
    def peer_s(self) -> float:
        return _stat(self.stat, self.peer_samples)

    @property
    def ratio(self) -> float:
        return self.subject_s / self.peer_s if self.peer_s > 0 else float("inf")

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "subject": self.subject, "peer": self.peer, "stat": self.stat,
            "subject_s": self.subject_s, "peer_s": self.peer_s, "ratio": self.ratio,
            "target": self.target, "passed": self.passed, "note": self.note,
            "subject_samples": list(self.subject_samples), "peer_samples": list(self.peer_samples),
        }


def _stat(stat: str, samples: Sequence[float]) -> float:
    if stat == "median":
        return median(samples)
    if stat.startswith("p") and stat[1:].isdigit():
        return percentile(samples, float(stat[1:]))
    raise ValueError(f"unknown statistic {stat!r}")


def fmt_seconds(s: float) -> str:
    """Seconds, in the unit that reads best."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def print_table(title: str, comparisons: Sequence[Comparison], console: Console | None = None) -> None:
    """A rich table: measurement, Lakehouse time, peer and its time, ratio, target, PASS/FAIL."""
    table = Table(title=title, title_justify="left")
    for col, just in (("measurement", "left"), ("stat", "left"), ("lakehouse", "right"), ("peer", "left"),
                      ("peer time", "right"), ("ratio", "right"), ("target", "right"), ("result", "center")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for c in comparisons:
        result = "-" if c.passed is None else ("[green]PASS[/green]" if c.passed else "[bold red]FAIL[/bold red]")
        table.add_row(c.name, c.stat, fmt_seconds(c.subject_s), c.peer, fmt_seconds(c.peer_s), f"{c.ratio:.2f}x",
                      "-" if c.target is None else f"<= {c.target:g}x", result)
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or captured: don't squeeze the table into 80 columns
            console = Console(width=160)
    console.print(table)


# -- environment, files, output ------------------------------------------------------------
@contextlib.contextmanager
def temp_dir(prefix: str = "lakehouse-bench-", keep: bool = False) -> Iterator[Path]:
    """A scratch directory, removed afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            log.info("kept %s", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def remove(path: Path) -> None:
    """Delete a file or directory tree if it is there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "duckdb": duckdb.__version__, "lakehouse": lakehouse.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(path: str | Path, payload: dict[str, Any], default_name: str = "results.json") -> Path:
    """Write `payload` as JSON to `path` (to `path/default_name` when `path` is a directory)."""
    target = Path(path)
    if target.is_dir():
        target = target / default_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    log.info("wrote %s", target)
    return target


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Options every benchmark takes: --json PATH, --keep, --verbose, --check."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON to PATH")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def setup_logging(verbose: bool = False) -> None:
    """Progress messages on stderr (a no-op when the caller configured logging already)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
