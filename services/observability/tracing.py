"""W3C trace context through hfbus: from a request's headers into the upstream HTTP call and every output.

With OpenTelemetry installed and a tracer provider configured, each request also gets spans (`hfbus <tag>`
with `decode`, `upstream` and `publish` children). Without it the incoming `traceparent` / `tracestate`
are forwarded unchanged, as an intermediary that does not trace should do, and nothing else happens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

TRACE_HEADERS = ("traceparent", "tracestate")

upstream_trace: ContextVar[dict[str, str] | None] = ContextVar("hfbus_upstream_trace", default=None)
"""The trace headers the running request's upstream calls should carry (None: not traced)."""

try:  # OpenTelemetry is optional: the service must run the same without it.
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised only where OpenTelemetry is absent
    _propagate = None  # type: ignore[assignment]
    _trace = None  # type: ignore[assignment]


_request_tracer: ContextVar[Any | None] = ContextVar("hfbus_tracer", default=None)
"""The running request's tracer, looked up once per request instead of once per span."""


def _tracer() -> Any | None:
    """The hfbus tracer when a real tracer provider is configured; None for the API's no-op default."""
    if _trace is None:
        return None
    if isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider | _trace.NoOpTracerProvider):
        return None
    return _trace.get_tracer("hfbus")


@contextmanager
def request_trace(headers: Mapping[str, str] | None, tag: str, request_id: str) -> Iterator[dict[str, str] | None]:
    """Run one request inside its trace; yields the headers its outputs and upstream calls carry."""
    incoming = {name: value for name in TRACE_HEADERS if headers and (value := headers.get(name))}
    tracer = _tracer()
    if tracer is None and not incoming:
        yield None  # nothing to trace or forward: the context keeps its defaults (no tracer, no trace headers)
        return
    tracer_token = _request_tracer.set(tracer)
    try:
        with _traced(tracer, incoming, tag, request_id) as outgoing:
            yield outgoing
    finally:
        _request_tracer.reset(tracer_token)


@contextmanager
def _traced(tracer: Any | None, incoming: dict[str, str], tag: str, request_id: str) -> Iterator[dict[str, str] | None]:
    if tracer is None or _propagate is None:
        token = upstream_trace.set(incoming or None)
        try:
            yield incoming or None
        finally:
            upstream_trace.reset(token)
        return
    parent = _propagate.extract(incoming)
    attributes = {"messaging.system": "nats", "hfbus.tag": tag, "hfbus.request_id": request_id}
    with tracer.start_as_current_span(
        f"hfbus {tag}", context=parent, kind=_trace.SpanKind.CONSUMER, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        _propagate.inject(carrier)
        token = upstream_trace.set(carrier or None)
        try:
            yield carrier or None
        finally:
            upstream_trace.reset(token)


def span(name: str) -> Any:
    """A child span of the current request (a no-op context without a configured tracer)."""
    tracer = _request_tracer.get()
    return tracer.start_as_current_span(name) if tracer is not None else nullcontext()


def with_trace(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the running request's trace headers, for an upstream call."""
    trace = upstream_trace.get()
    if trace is None:
        return headers
    if _propagate is not None and _request_tracer.get() is not None:
        carrier: dict[str, str] = {}
        _propagate.inject(carrier)  # the current span (e.g. `upstream`) becomes the router call's parent
        trace = carrier or trace
    return {**headers, **trace}
