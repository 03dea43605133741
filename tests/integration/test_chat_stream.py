"""The chat stream read inside aiohttp's socket callback, against the fake router over real sockets.

A sink that asks for pauses gets every delta, in order, once; the connection goes back to the pool after a
stream read to its end, also when reads were paused; an async `on_delta` sees the same text.
"""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from schemas import ChatMessage, ChatRequest
from services.dev.fake_router import FakeRouter
from services.dev.fake_router.chat import expected_text
from services.hf.answers import ChatDelta
from services.hf.client import HfClient
from services.settings import Settings

pytestmark = pytest.mark.integration

MESSAGES = [ChatMessage(role="user", content="tell me a story")]
AS_SENT = [{"role": "user", "content": "tell me a story"}]


class _PausingSink:
    """Asks for a pause after every `every`-th delta, as a full NATS buffer would."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.deltas: list[ChatDelta] = []
        self.drains = 0

    def push(self, delta: ChatDelta) -> bool:
        self.deltas.append(delta)
        return len(self.deltas) % self.every != 0

    async def drain(self) -> None:
        self.drains += 1


@pytest.mark.parametrize("pace_s", [0.0, 0.002])
@pytest.mark.parametrize("every", [1, 2, 1000])
async def test_every_delta_arrives_once_in_order_however_often_the_sink_pauses(
    settings: Settings, router: FakeRouter, pace_s: float, every: int
) -> None:
    router.pace_s = pace_s
    request = ChatRequest(id="r1", messages=MESSAGES, max_tokens=200)
    async with HfClient(settings) as client:
        for _ in range(3):  # the same pooled connection streams again after a stream read to its end
            sink = _PausingSink(every)
            await client.stream_chat_to(request, "org/model", sink)
            assert "".join(d.content for d in sink.deltas) == expected_text(AS_SENT, 200)
            assert sum(d.tokens for d in sink.deltas) == 200
            usage = [d.usage for d in sink.deltas if d.usage is not None]
            assert usage and usage[-1].completion_tokens == 200
            assert (sink.drains > 0) is (len(sink.deltas) >= every)
            # Back in the pool, idle: aiohttp keeps no public count, so its pool's private map is read.
            connector = client.session.connector
            assert connector is not None
            assert sum(len(idle) for idle in connector._conns.values()) == 1  # type: ignore[attr-defined]
        assert len(router.requests) == 3
    assert router.completed_streams == 3
    assert router.disconnects == 0


async def test_an_async_callback_sees_the_whole_answer(settings: Settings, router: FakeRouter) -> None:
    request = ChatRequest(id="r1", messages=MESSAGES, max_tokens=50)
    seen: list[str] = []

    async def on_delta(delta: ChatDelta) -> None:
        seen.append(delta.content)

    async with HfClient(settings) as client:
        await client.stream_chat(request, "org/model", on_delta)
    assert "".join(seen) == expected_text(AS_SENT, 50)


async def test_a_stream_ending_without_done_leaves_its_connection_fit_for_the_next(settings: Settings) -> None:
    # Some providers end with `finish_reason` and no `[DONE]`: the last delta is pushed at the end of the body,
    # when the connection is already back in the pool; a sink that pauses there must not hurt the next stream.
    events = [
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    ]
    body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body[:-2])  # the last event completes only with the end of the body
        await response.write(body[-2:])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async with TestServer(app, host="127.0.0.1") as server:
        settings = replace(settings, router_url=str(server.make_url("")).rstrip("/"), max_retries=0)
        request = ChatRequest(id="r1", messages=MESSAGES, max_tokens=5)
        async with HfClient(settings) as client:
            for _ in range(3):
                sink = _PausingSink(every=1)  # asks for a pause at every delta, the last one included
                await client.stream_chat_to(request, "org/model", sink)
                assert "".join(d.content for d in sink.deltas) == "Hello"
                connector = client.session.connector
                assert connector is not None
                assert sum(len(idle) for idle in connector._conns.values()) == 1  # type: ignore[attr-defined]
