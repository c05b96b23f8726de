"""Carry Lakehouse errors through DuckDB: a UDF's exception reaches the caller as DuckDB's own
InvalidInputException, so the original travels as an unforgeable token that `from_duckdb` reads back."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from lakehouse.errors import LakehouseError, carry

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def udf_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except LakehouseError as exc:
            raise carry(exc) from exc
        except Exception as exc:  # a bug of ours: a 500 for the caller, the traceback in our log
            log.error("SQL function %s failed", fn.__name__, exc_info=exc)
            raise carry(LakehouseError(f"internal error in SQL function {fn.__name__}")) from exc

    return wrapper  # type: ignore[return-value]
