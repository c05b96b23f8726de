"""Lakehouse's exception tree. Every error a user can see is one of these.

    LakehouseError                  500 internal       base; carries `status` and `code`
    ├── InvalidInput                400 invalid_input  + ValueError: bad argument, file, name, SQL
    │   ├── SettingsError           400 invalid_setting  unknown key / wrong type at open
    │   └── PayloadTooLarge         413 payload_too_large
    ├── Forbidden                   403 forbidden      + PermissionError: refused by the sandbox
    ├── NotFound                    404 not_found      + KeyError: dataset, corpus, route, ...
    │   └── ProviderNotConfigured   404 provider_not_configured
    ├── Conflict                    409 conflict       exists already / concurrent change
    ├── Unprocessable               422 unprocessable  well-formed but cannot run (binder errors)
    ├── QueryTimeout                504 timeout        + TimeoutError: interrupted by the timer
    ├── ProviderError               502 provider_error an LLM / embedding provider failed
    ├── ExtensionMissing            500 extension_missing  names the pip package to install
    └── StorageError                500 storage_error  the lake or a sidecar could not be written

DuckDB's exceptions are translated in exactly one place, `map_duckdb_errors()`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import duckdb


class LakehouseError(Exception):
    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.message

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update({k: v for k, v in self.details.items() if v is not None})
        return body


class InvalidInput(LakehouseError, ValueError):
    status = 400
    code = "invalid_input"


class SettingsError(InvalidInput):
    code = "invalid_setting"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class Forbidden(LakehouseError, PermissionError):
    status = 403
    code = "forbidden"


class NotFound(LakehouseError, KeyError):
    status = 404
    code = "not_found"


class ProviderNotConfigured(NotFound):
    code = "provider_not_configured"


class Conflict(LakehouseError):
    status = 409
    code = "conflict"


class Unprocessable(LakehouseError):
    status = 422
    code = "unprocessable"


class QueryTimeout(LakehouseError, TimeoutError):
    status = 504
    code = "timeout"


class ProviderError(LakehouseError):
    status = 502
    code = "provider_error"


class ExtensionMissing(LakehouseError):
    code = "extension_missing"


class StorageError(LakehouseError):
    code = "storage_error"


# Most specific first: DuckDB's classes form a hierarchy of their own.
_DUCKDB_MAP: tuple[tuple[type[BaseException], type[LakehouseError], str], ...] = (
    (duckdb.InterruptException, QueryTimeout, "timeout"),
    (duckdb.PermissionException, Forbidden, "forbidden"),
    (duckdb.ParserException, InvalidInput, "sql_syntax"),
    (duckdb.CatalogException, Unprocessable, "sql_catalog"),
    (duckdb.BinderException, Unprocessable, "sql_binder"),
    (duckdb.ConstraintException, Conflict, "constraint"),
    (duckdb.TransactionException, Conflict, "transaction_conflict"),
    (duckdb.ConversionException, InvalidInput, "conversion"),
    (duckdb.InvalidInputException, InvalidInput, "invalid_input"),
    (duckdb.OutOfRangeException, InvalidInput, "out_of_range"),
    (duckdb.IOException, StorageError, "io_error"),
)

_PREFIX = re.compile(r"^[A-Za-z ]*Error: ")


def clean_duckdb_message(exc: BaseException) -> str:
    """DuckDB prefixes messages with their class ('Binder Error: ...'); keep the sentence."""
    text = str(exc).strip()
    return _PREFIX.sub("", text, count=1) or type(exc).__name__


UDF_MARKER = "[lakehouse:{code}:{status}] {message}"
_UDF_MARKER = re.compile(r"\[lakehouse:(\w+):(\d+)\] (.*)", re.DOTALL)
_BY_STATUS: dict[int, type[LakehouseError]] = {
    400: InvalidInput, 403: Forbidden, 404: NotFound, 409: Conflict, 413: PayloadTooLarge, 422: Unprocessable,
    502: ProviderError, 504: QueryTimeout,
}


def from_duckdb(exc: duckdb.Error) -> LakehouseError:
    marked = _UDF_MARKER.search(str(exc))
    if marked:  # raised by one of our UDFs: restore it
        code, status, message = marked.group(1), int(marked.group(2)), marked.group(3).split("\n\nAt:")[0].strip()
        return _BY_STATUS.get(status, LakehouseError)(message, code=code)
    for dtype, ltype, code in _DUCKDB_MAP:
        if isinstance(exc, dtype):
            return ltype(clean_duckdb_message(exc), code=code)
    return LakehouseError(clean_duckdb_message(exc), code="duckdb_error")


@contextlib.contextmanager
def map_duckdb_errors() -> Iterator[None]:
    """The one boundary where DuckDB exceptions become Lakehouse ones."""
    try:
        yield
    except LakehouseError:
        raise
    except duckdb.Error as exc:
        raise from_duckdb(exc) from exc
