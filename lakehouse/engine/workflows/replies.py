"""JSON in a model's answer: models wrap it in a ```json fence, and some put a sentence before it."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)
_EMBEDDED_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


def json_reply(text: str, *, lenient: bool = False) -> Any:
    """The JSON value of `text`: all of it, or the inside of one fence around all of it. `lenient` also takes
    the first fenced block anywhere, then the span from the first `{` to the last `}`. ValueError if none parse."""
    fenced = _FENCE.match(text)
    candidates = [fenced.group(1) if fenced else text]
    if lenient:
        candidates += [m.group(1) for m in _EMBEDDED_FENCE.finditer(text)]
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError(f"not JSON: {text[:120]!r}")
