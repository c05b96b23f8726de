"""ObservedOps as OpenTelemetry spans over OTLP/HTTP, when `otlp_endpoint` is set.

Needs the optional extra: `pip install 'lakehouse[otel]'` (opentelemetry-sdk and
opentelemetry-exporter-otlp-proto-http). Spans are batched and exported in the background; one span
per op, named after it, with the op's origin, status, rows and workflow node as attributes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from lakehouse.engine.observer.ops import ObservedOp
from lakehouse.errors import ExtensionMissing

log = logging.getLogger(__name__)

SERVICE = "lakehouse"


class OtlpExporter:
    """Call it with each ObservedOp (an `Observer.listeners` entry); `close()` flushes."""

    def __init__(self, endpoint: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace import Status, StatusCode
        except ImportError as exc:
            raise ExtensionMissing("otlp_endpoint is set but OpenTelemetry is not installed: "
                                   "pip install 'lakehouse[otel]'", code="otel_missing") from exc
        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"  # the OTLP/HTTP path of traces under a collector's base URL
        self._status, self._code = Status, StatusCode
        self._provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self._tracer = self._provider.get_tracer("lakehouse.ops")

    def __call__(self, item: ObservedOp) -> None:
        start = _ns(item.ts)
        attrs: dict[str, Any] = {"lakehouse.op": item.op, "lakehouse.origin": item.origin, "lakehouse.op_id": item.id}
        for name in ("rows", "error_code", "profile", "workflow", "run_id", "node"):
            value = getattr(item, name)
            if value is not None:
                attrs[f"lakehouse.{name}"] = value
        span = self._tracer.start_span(item.op, attributes=attrs, start_time=start)
        if not item.ok:
            span.set_status(self._status(self._code.ERROR, item.error_code or "error"))
        span.end(end_time=start + int(item.duration_ms * 1e6))

    def close(self) -> None:
        self._provider.shutdown()  # exports what is batched, then stops the worker


def _ns(ts: str) -> int:
    return int(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1e9)
