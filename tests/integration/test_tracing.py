"""W3C trace context continues from a request into the upstream call and every output; spans with OTel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.dev.fake_router import FakeRouter
from services.settings import Settings
from tests.conftest import chat_payload, running

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def _traced_chat(settings: Settings, nc: NATS) -> list[object]:
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    await nc.publish(f"{settings.prefix}.chat", chat_payload(), reply=inbox, headers=headers)
    messages = []
    while True:
        msg = await subscription.next_msg(timeout=10)
        messages.append(msg)
        if b'"type":"result"' in msg.data or b'"type":"error"' in msg.data:
            return messages


async def test_without_a_tracer_the_incoming_trace_context_is_forwarded_unchanged(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    async with running(settings):
        messages = await _traced_chat(settings, nc)

    assert b'"type":"result"' in messages[-1].data
    assert all(m.headers and m.headers["traceparent"] == TRACEPARENT for m in messages)
    assert all(m.headers and m.headers["tracestate"] == "vendor=1" for m in messages)
    upstream = router.requests[-1].headers
    assert upstream["traceparent"] == TRACEPARENT and upstream["tracestate"] == "vendor=1"


async def test_an_untraced_request_carries_no_trace_headers(settings: Settings, router: FakeRouter, nc: NATS) -> None:
    async with running(settings):
        inbox = nc.new_inbox()
        subscription = await nc.subscribe(inbox)
        await nc.publish(f"{settings.prefix}.chat", chat_payload(), reply=inbox)
        first = await subscription.next_msg(timeout=10)

    assert not first.headers
    assert "traceparent" not in router.requests[-1].headers


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = trace._TRACER_PROVIDER
    trace._TRACER_PROVIDER = provider  # set_tracer_provider refuses a second call per process
    yield exporter
    trace._TRACER_PROVIDER = original
    provider.shutdown()


async def test_with_opentelemetry_the_request_has_spans_in_the_callers_trace(
    settings: Settings, router: FakeRouter, nc: NATS, spans: InMemorySpanExporter
) -> None:
    async with running(settings):
        messages = await _traced_chat(settings, nc)

    finished = {s.name: s for s in spans.get_finished_spans()}
    assert {"hfbus chat", "decode", "upstream", "publish"} <= set(finished)
    root = finished["hfbus chat"]
    assert format(root.context.trace_id, "032x") == TRACE_ID
    assert root.parent is not None and format(root.parent.span_id, "016x") == "00f067aa0ba902b7"
    for name in ("decode", "upstream", "publish"):
        assert finished[name].parent is not None and finished[name].parent.span_id == root.context.span_id
    # The outputs and the router call continue the same trace, under hfbus's own spans.
    upstream = router.requests[-1].headers["traceparent"]
    assert upstream.split("-")[1] == TRACE_ID
    assert upstream.split("-")[2] == format(finished["upstream"].context.span_id, "016x")
    assert all(m.headers and m.headers["traceparent"].split("-")[1] == TRACE_ID for m in messages)
    assert b'"type":"result"' in messages[-1].data
