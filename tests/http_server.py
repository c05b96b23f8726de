"""HTTP test helpers: the real app served by waitress on 127.0.0.1, and fixtures around it.

    with LiveServer(create_app(lake)) as base_url:
        httpx.get(base_url + "/health")

Fixtures, for test modules to import (`from http_server import client_fixture  # noqa: F401`;
the `_fixture` suffix keeps linters from reading test arguments as shadowed imports), built on
tests/conftest.py's `lake`: `make_lake(**settings)` opens extra lakes closed after the test,
`app`, `client` (Flask's test client), `live_url` (the app over loopback on waitress) and
`http` (an httpx.Client on it). For tables of failure cases: `routes_without_cases` (which routes a table
misses) and `break_op` (an operation that raises).
"""

from __future__ import annotations

import dataclasses
import importlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from waitress import wasyncore
from werkzeug.exceptions import MethodNotAllowed, NotFound

import lakehouse
from lakehouse.http import create_app
from lakehouse.http.app import BLUEPRINTS
from lakehouse.http.serve import build_server


class LiveServer:
    """Serve a WSGI app in a background thread on a free loopback port until the block ends."""

    def __init__(self, app: Flask, threads: int = 4) -> None:
        # build_server, not a bare create_server: the tests then cover serve()'s body-size limits
        self._server = build_server(app, "127.0.0.1", 0, threads=threads)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lakehouse-test-http", daemon=True)
        self.url = f"http://127.0.0.1:{self._server.effective_port}"

    def _run(self) -> None:
        # Waitress's own run() only stops on signals; poll a stop flag instead, and close every
        # socket from this thread, since waitress's socket map is not thread-safe.
        socket_map = self._server._map
        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(socket_map)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "test HTTP server did not stop"


def routes_without_cases(requests: Iterable[tuple[str, str]], wanted: Callable[[str], bool], *,
                         refused_covers: bool = False) -> list[str]:
    """The endpoints `wanted` selects that none of the (method, path) `requests` reaches. A 404 reaches none; a 405
    covers the route that refused the method only with `refused_covers` (for routes whose one failure it is)."""
    app = Flask(__name__)
    for module in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(module).bp)
    urls = app.url_map.bind("localhost")
    covered = set()
    for method, path in requests:
        path = path.split("?")[0]
        try:
            covered.add(urls.match(path, method=method)[0])
        except MethodNotAllowed as exc:
            if refused_covers:
                covered.add(urls.match(path, method=sorted(exc.valid_methods or ["GET"])[0])[0])
        except NotFound:
            pass
    return sorted(rule.endpoint for rule in app.url_map.iter_rules() if wanted(rule.endpoint)
                  and rule.endpoint not in covered)


def break_op(monkeypatch: pytest.MonkeyPatch, lake: lakehouse.Lake, name: str) -> None:
    """Make operation `name` raise RuntimeError("secret detail") until the test ends."""
    def _raise(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    op = lake.ops.catalog.get(name)
    monkeypatch.setitem(lake.ops.catalog._ops, name, dataclasses.replace(op, run=_raise))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(name="make_lake")
def make_lake_fixture(tmp_path: Path) -> Iterator[Callable[..., lakehouse.Lake]]:
    """make_lake(max_upload_mb=1, ...) -> a fresh lake with those settings, closed after the test."""
    opened: list[lakehouse.Lake] = []

    def _make(**settings: Any) -> lakehouse.Lake:
        lake = lakehouse.open(tmp_path / f"lake{len(opened)}", **settings)
        opened.append(lake)
        return lake

    yield _make
    for lake in opened:
        lake.close()


@pytest.fixture(name="app")
def app_fixture(lake: lakehouse.Lake) -> Flask:
    return create_app(lake)


@pytest.fixture(name="client")
def client_fixture(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(name="live_url")
def live_url_fixture(app: Flask) -> Iterator[str]:
    with LiveServer(app) as url:
        yield url


@pytest.fixture(name="http")
def http_fixture(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client
