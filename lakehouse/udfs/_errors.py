"""Carry Lakehouse errors through DuckDB: a UDF's exception reaches the caller as DuckDB's own
InvalidInputException, so the code and status travel in a marker that `from_duckdb` reads back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from lakehouse.errors import UDF_MARKER, LakehouseError

F = TypeVar("F", bound=Callable[..., Any])


def udf_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except LakehouseError as exc:
            raise ValueError(UDF_MARKER.format(code=exc.code, status=exc.status, message=exc.message)) from exc

    return wrapper  # type: ignore[return-value]
