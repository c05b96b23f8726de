"""`ChatStream`: the iterator `ChatDispatcher.stream` returns."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx

from lakehouse.engine.chat.wire import iter_deltas, provider_errors
from lakehouse.errors import LakehouseError, ProviderError

if TYPE_CHECKING:
    from lakehouse.engine.chat.dispatcher import ChatDispatcher, _CallLog, _Target

log = logging.getLogger(__name__)


class ChatStream:
    """Iterator of text deltas; closes the response and records the op when done or closed."""

    def __init__(self, owner: ChatDispatcher, target: _Target, resp: httpx.Response,
                 call: _CallLog, timeout: float) -> None:
        self.model, self.provider = target.model, target.provider
        self.usage: dict[str, int] = {}
        self._owner, self._t, self._resp, self._call, self._timeout = owner, target, resp, call, timeout
        self._deltas = iter_deltas(target.spec.wire, target.provider, resp.iter_lines())
        self._done = False

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        while not self._done:
            try:
                with provider_errors(self.provider, self._t.url, self._timeout, self._owner._keys.scrub):
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
        """Stop early (client went away): still recorded, as ok with `cancelled`."""
        if not self._done:
            self._finish(cancelled=True)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def _finish(self, *, error: LakehouseError | None = None, cancelled: bool = False) -> None:
        self._done = True
        self._resp.close()
        extra = {"stream": True, **({"cancelled": True} if cancelled else {})}
        self._owner._record(self._call, self._t, ok=error is None, usage=self.usage, error=error, extra=extra)
        if error is None:
            log.info("chat stream %s via %s: %d tokens", self.model, self.provider, self.usage.get("total_tokens", 0))
