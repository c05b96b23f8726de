"""Jinja filters of the web UI: how values read on a page. Presentation only; Jinja's autoescape does the
escaping (these return plain text, except `cite`, which escapes first and then adds its own links)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Collection
from typing import Any

from flask import Flask, request
from markupsafe import Markup, escape

_REFS = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def cell(value: Any) -> str:
    """A result cell as text: NULL empty, lists joined, objects as JSON, times without microseconds."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, dt.datetime):
        return when(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


def cite(text: Any, numbers: Collection[int]) -> Markup:
    """An answer, escaped, with each citation mark [n] of a listed source (`numbers`) a link to it."""
    listed = set(numbers)

    def link(m: re.Match[str]) -> str:
        marks = [int(n) for n in re.split(r"\s*[,;]\s*", m.group(1))]
        if not all(n in listed for n in marks):
            return m.group(0)
        return "".join(f'<a class="cite" href="#cite-{n}" data-cite="{n}">[{n}]</a>' for n in marks)

    return Markup(_REFS.sub(link, str(escape(text))))


def when(value: Any) -> str:
    """A time to the second: a datetime, or the ISO text the observer and the journal carry."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value or "")[:19].replace("T", " ")


def pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


def ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} ms" if value < 10 else f"{value:,.0f} ms"


def pager(total: int, offset: int, limit: int) -> dict[str, Any]:
    """Page numbers for a listing: this page, how many, and the offsets of the neighbours."""
    pages = max(1, math.ceil(total / limit))
    page = offset // limit + 1
    return {"page": page, "pages": pages, "first": offset + 1 if total else 0, "last": min(offset + limit, total),
            "total": total, "prev": page - 1 if page > 1 else None, "next": page + 1 if page < pages else None}


def page_number() -> int:
    """`?page=N` of this request (1 when absent or not a positive number)."""
    return max(request.args.get("page", 1, type=int) or 1, 1)


def install(app: Flask) -> None:
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True  # pages without the template's indentation
    app.jinja_env.filters.update(cell=cell, cite=cite, pct=pct, ms=ms, when=when)
    app.jinja_env.globals.update(pager=pager)
