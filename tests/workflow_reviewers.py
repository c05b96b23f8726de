"""Deterministic reviewer models for the loopback LLM server (`srv.model_replies[model] = reviewer(...)`): they
read the numbered chunks in the review prompt (engine/workflows/findings.py) and report each line holding a
pattern, with the file and line number the prompt shows, as a real reviewer's JSON answer would."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

_NUMBERED = re.compile(r"^\s*(\d+) ([+ ]) (.*)$")


def reviewer(pattern: str | None, severity: str = "high", check: str = "off-by-one", *, confidence: int = 9,
             unsure_below: int | None = None, barrier: threading.Barrier | None = None,
             added_only: bool = True) -> Callable[[list[dict[str, Any]]], str]:
    """Reports lines containing `pattern` (diff: added lines only, unless `added_only` is false). With
    `unsure_below`, its confidence drops to that when it found something (a model out of its depth); with
    `barrier`, it answers only once every reviewer sharing the barrier has been asked."""
    def reply(messages: list[dict[str, Any]]) -> str:
        if barrier is not None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return "I was asked alone"  # not JSON: the review fails, and so does the test
        findings, file = [], None
        for line in messages[-1]["content"].splitlines():
            if line.startswith("--- "):
                file = line[4:].rsplit(" (", 1)[0]
            elif (m := _NUMBERED.match(line)) and (m.group(2) == "+" or not added_only) \
                    and pattern and pattern in m.group(3):
                findings.append({"file": file, "line": int(m.group(1)), "severity": severity, "check": check,
                                 "rationale": f"{m.group(3).strip()!r} looks wrong"})
        sure = confidence if unsure_below is None or not findings else unsure_below
        return json.dumps({"confidence": sure, "findings": findings})
    return reply
