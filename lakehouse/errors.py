"""Lakehouse's exception tree. Every error a user can see is one of these.

    LakehouseError                  500 internal       base; carries `status` and `code`
    ├── InvalidInput                400 invalid_input  + ValueError: bad argument, file, name, SQL
    │   ├── SettingsError           400 invalid_setting  unknown key / wrong type at open
    │   └── PayloadTooLarge         413 payload_too_large
    ├── Unauthorized                401 unauthorized   no key, or a key that is not this server's
    ├── Forbidden                   403 forbidden      + PermissionError: refused by the sandbox or a profile
    ├── NotFound                    404 not_found      + KeyError: dataset, corpus, route, ...
    ├── ProviderNotConfigured       503 provider_not_configured  no key (or base URL) for that provider here
    ├── Conflict                    409 conflict       exists already / concurrent change
    ├── Unprocessable               422 unprocessable  well-formed but cannot run (binder errors)
    ├── TooManyRequests             429 too_many_requests  asked again too soon (index rebuilds)
    ├── QueryTimeout                504 timeout        + TimeoutError: interrupted by the timer
    ├── ProviderError               502 provider_error an LLM / embedding provider failed
    ├── ExtensionMissing            500 extension_missing  names the pip package to install
    └── StorageError                500 storage_error  the lake or a sidecar could not be written

DuckDB's exceptions are translated in exactly one place, `map_duckdb_errors()`.
"""

from __future__ import annotations

import collections
import contextlib
import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import duckdb

from lakehouse.scrub import scrub


class LakehouseError(Exception):
    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        message = scrub(message)  # a key the caller sent (or an upstream echoed) never comes back out
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


class Unauthorized(LakehouseError):
    status = 401
    code = "unauthorized"


class Forbidden(LakehouseError, PermissionError):
    status = 403
    code = "forbidden"


class NotFound(LakehouseError, KeyError):
    status = 404
    code = "not_found"


class ProviderNotConfigured(LakehouseError):
    status = 503
    code = "provider_not_configured"


class Conflict(LakehouseError):
    status = 409
    code = "conflict"


class TooManyRequests(LakehouseError):
    status = 429
    code = "too_many_requests"


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


class _Carried:
    """Errors raised inside our UDFs, held here while DuckDB carries a token of them to the caller.

    A UDF's exception reaches the caller as DuckDB's own InvalidInputException with only its text. The
    text carries a random token; `from_duckdb` looks it up and re-raises the original exception (its
    class, code and details). A token a query writes itself (`SELECT error('[lakehouse-error:...]')`)
    is not in this table, so no caller can choose the server's status or code.
    """

    LIMIT = 512  # tokens never read back (a caller that swallowed the error) are dropped oldest first

    def __init__(self) -> None:
        self._items: collections.OrderedDict[str, LakehouseError] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, exc: LakehouseError) -> str:
        token = secrets.token_hex(12)
        with self._lock:
            self._items[token] = exc
            while len(self._items) > self.LIMIT:
                self._items.popitem(last=False)
        return token

    def take(self, token: str) -> LakehouseError | None:
        with self._lock:
            return self._items.pop(token, None)


_CARRIED = _Carried()
_TOKEN = re.compile(r"\[lakehouse-error:([0-9a-f]{24})\]")


def carry(exc: LakehouseError) -> ValueError:
    """The exception a UDF raises so that `exc` itself comes out of DuckDB (see `_Carried`)."""
    return ValueError(f"[lakehouse-error:{_CARRIED.put(exc)}] {exc.message}")


def from_duckdb(exc: duckdb.Error) -> LakehouseError:
    for token in _TOKEN.findall(str(exc)):
        carried = _CARRIED.take(token)
        if carried is not None:  # raised by one of our UDFs: the original, whatever its class
            return carried
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
