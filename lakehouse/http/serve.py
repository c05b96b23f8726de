"""`serve(lake)`: the HTTP API on waitress (what `lakehouse serve` runs)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import waitress
from flask import Flask

from lakehouse.errors import Forbidden
from lakehouse.http.app import LOOPBACK, create_app

if TYPE_CHECKING:
    from lakehouse.engine.lake import Lake

log = logging.getLogger(__name__)

_WAITRESS_DEFAULT_BODY = 2**30
_BODY_SLACK = 16 * 2**20


def build_server(app: Flask, host: str = "127.0.0.1", port: int = 3100, threads: int = 8) -> Any:
    """A bound, not yet running waitress server for `app` (port 0 picks a free port)."""
    limit = app.config.get("MAX_CONTENT_LENGTH") or 0
    # Waitress answers bodies over its own limit with a plain-text 413 before Flask runs. Keep
    # it above Flask's limit so an oversized upload gets the JSON error, yet bounded, since
    # waitress buffers the whole body (to disk) before the app sees it.
    body_limit = limit + max(limit, _BODY_SLACK) if limit else _WAITRESS_DEFAULT_BODY
    return waitress.create_server(app, host=host, port=port, threads=threads,
                                  max_request_body_size=body_limit, ident="lakehouse")


def serve(lake: Lake, host: str = "127.0.0.1", port: int = 3100, threads: int = 8) -> None:
    """Serve `lake` until Ctrl-C or SIGTERM; the caller closes the lake afterwards. Beyond loopback every request
    must carry a key (`auth` defaults to required there), and the server starts only when `api_key` is set or
    `auth = "required"` was chosen (profiles' keys only): anyone who can reach the port could otherwise run the API."""
    app = create_app(lake, bind_host=host)
    if host.strip("[]").lower() not in LOOPBACK and not lake.settings.api_key and lake.settings.auth != "required":
        raise Forbidden(f"serving on {host} reaches beyond this machine: set api_key (LH_API_KEY) or auth = "
                        "'required' first", code="api_key_required")
    server = build_server(app, host, port, threads)
    log.info("serving lake %s on http://%s:%s (%d threads)", lake.root, server.effective_host,
             server.effective_port, threads)
    with _sigterm_exits():
        server.run()  # waitress stops its workers and returns on KeyboardInterrupt / SystemExit
    log.info("server stopped")


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so `kill` stops the server as cleanly as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():  # signals are main-thread only
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
