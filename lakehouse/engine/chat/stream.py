"""`ChatStream`: the iterator `ChatDispatcher.stream` returns."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import httpx

from lakehouse.engine.chat.wire import iter_deltas
from lakehouse.errors import LakehouseError, ProviderError

log = logging.getLogger(__name__)


class ChatStream:
    """Iterator of text deltas; closes the response when done or closed, then calls `on_finish(error)`
    (None when it ended well or was cancelled), which the operations catalog uses to record the call."""

    def __init__(self, model: str, provider: str, wire: str, resp: httpx.Response,
                 errors: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
        self.model, self.provider = model, provider
        self.usage: dict[str, int] = {}
        self.cancelled = False
        self.on_finish: Callable[[LakehouseError | None], None] | None = None
        self._resp, self._errors = resp, errors
        self._deltas = iter_deltas(wire, provider, resp.iter_lines())
        self._done = False

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        while not self._done:
            try:
                with self._errors():
                    item = next(self._deltas, None)
            except ProviderError as exc:
                self._finish(error=exc)
                raise
            if item is None:
                self._finish()
                break
            text, usage = item
            if usage:
                self.usage = usage
            if text:
                return text
        raise StopIteration

    def close(self) -> None:
        """Stop early (the client went away): still finished, as ok with `cancelled`."""
        if not self._done:
            self.cancelled = True
            self._finish()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def _finish(self, *, error: LakehouseError | None = None) -> None:
        self._done = True
        self._resp.close()
        if self.on_finish is not None:
            self.on_finish(error)
        if error is None:
            log.info("chat stream %s via %s: %d tokens", self.model, self.provider, self.usage.get("total_tokens", 0))
