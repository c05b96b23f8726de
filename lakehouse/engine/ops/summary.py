"""What an ObservedOp keeps of an op's input and error: short, and never a key.

Strings are scrubbed of every loaded key (`chat.keys.scrub`) and cut to `TEXT` characters; long lists,
arrays, bytes and files become a note of their size. Summaries are built on the caller's path, so
they stay cheap (a few microseconds for a search's input).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pydantic

from lakehouse.errors import LakehouseError
from lakehouse.scrub import scrub

TEXT = 200
ITEMS = 10
ERROR = 500


def summarise_input(inp: pydantic.BaseModel | Mapping[str, Any], private: tuple[str, ...] = ()) -> dict[str, Any]:
    """The op's input, each value short; `private` fields only by their size."""
    values = inp.__dict__ if isinstance(inp, pydantic.BaseModel) else inp
    return {str(k): _size(v) if k in private else _value(v, 1) for k, v in values.items() if v is not None}


def _size(v: Any) -> str:
    return f"<{len(v)} chars>" if isinstance(v, str) else f"<{len(v)} items>" if hasattr(v, "__len__") else "<hidden>"


def _value(v: Any, depth: int) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):  # JSON readers (and orjson) stop at 64 bits; a bigger number is kept as its digits
        return v if -(2**63) <= v < 2**64 else str(v)
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else str(v)
    if isinstance(v, str):
        v = _clean(v)
        return v if len(v) <= TEXT else f"{v[:TEXT]}… ({len(v)} chars)"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return f"<{len(v)} bytes>"
    if isinstance(v, np.ndarray):
        return f"<array {'x'.join(map(str, v.shape))} {v.dtype}>"
    if isinstance(v, Mapping):
        if depth > 2 or len(v) > ITEMS:
            return f"<{len(v)} keys>"
        return {str(k): _value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if depth > 2 or len(v) > ITEMS:
            return f"<{len(v)} items>"
        return [_value(x, depth + 1) for x in v]
    if isinstance(v, pydantic.BaseModel):
        return _value(v.__dict__, depth)
    if hasattr(v, "read"):
        return f"<file {_clean(str(getattr(v, 'name', '') or ''))[:TEXT]}>"
    if hasattr(v, "__len__"):
        return f"<{type(v).__name__} of {len(v)}>"
    return f"<{type(v).__name__}>"


def summarise_error(exc: BaseException) -> tuple[str, str]:
    """(code, message) of a failed op, scrubbed and cut."""
    if isinstance(exc, LakehouseError):
        code, message = exc.code, exc.message
    else:
        code, message = "internal", f"{type(exc).__name__}: {exc}"
    message = _clean(message)
    return code, message if len(message) <= ERROR else message[:ERROR] + "…"


def _clean(text: str) -> str:
    """Scrubbed of keys, and valid UTF-8: a lone surrogate a caller sent is kept as its escape, so the record
    can be written at all."""
    return scrub(text).encode("utf-8", "backslashreplace").decode("utf-8")
