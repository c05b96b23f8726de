"""JSON for every response: the types DuckDB and numpy hand back, and no NaN on the wire.

    datetime / date / time  -> ISO 8601 string        Decimal -> number (int when integral)
    timedelta               -> seconds (number)        UUID    -> string
    bytes                   -> base64 string           numpy   -> the matching Python value
    NaN / +-inf             -> null                    set     -> array
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import json
import math
import uuid
from typing import Any

from flask.json.provider import DefaultJSONProvider

try:  # numpy comes with the engine's vector code, but JSON must not depend on it
    import numpy as np
except ImportError:  # pragma: no cover - numpy is installed alongside DuckDB's extras
    np = None  # type: ignore[assignment]

_PLAIN = (str, int, bool, type(None))


def to_jsonable(obj: Any) -> Any:
    """Return `obj` with every value json.dumps cannot write (or would write as NaN) converted."""
    if type(obj) in _PLAIN:  # fast path: most cells of a result are plain
        return obj
    if isinstance(obj, float):  # numpy.float64 is a float too
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (str, int)):  # subclasses (numpy.str_, IntEnum, bool)
        return obj
    if isinstance(obj, dict):
        return {_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (datetime.date, datetime.time)):  # datetime is a date
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, decimal.Decimal):
        return _decimal(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if np is not None:
        if isinstance(obj, np.ndarray):
            return to_jsonable(obj.tolist())
        if isinstance(obj, np.generic):
            return to_jsonable(obj.item())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    return obj  # json.dumps' `default` (Flask's) serialises it or raises TypeError


def _decimal(value: decimal.Decimal) -> int | float | None:
    if not value.is_finite():
        return None
    # Integral decimals (sums, DECIMAL(38,0) ids) stay exact; fractions become floats.
    return int(value) if value == value.to_integral_value() else float(value)


def _key(key: Any) -> str:
    """MAP columns can have non-string keys; JSON object keys are always strings."""
    if isinstance(key, str):
        return key
    converted = to_jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


class LakehouseJSONProvider(DefaultJSONProvider):
    """Flask's provider, with `to_jsonable` applied first and key order kept (columns are ordered)."""

    sort_keys = False
    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # allow_nan=False: a NaN that slipped past to_jsonable is a bug, not invalid JSON on the wire
        kwargs.setdefault("allow_nan", False)
        return super().dumps(to_jsonable(obj), **kwargs)
