"""Bad input gets one `invalid_request` error naming what was wrong, and the consumer keeps serving."""

from __future__ import annotations

from dataclasses import replace

import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import BadRequestError

from schemas import ChatResult, Error, ErrorCode
from services.client import HfBus
from services.dev.fake_router import FakeRouter
from services.settings import Mode, Settings
from tests.conftest import chat_payload, collect, running, send_raw

pytestmark = pytest.mark.integration

USER = [{"role": "user", "content": "hi"}]
MSGPACK = {"Content-Type": "application/msgpack"}

CASES: list[tuple[str, bytes, dict[str, str] | None, str]] = [
    ("not JSON", b"hello there", None, "not valid JSON"),
    ("not msgpack", b"\xc1\xc1", MSGPACK, "not valid msgpack"),
    ("missing id", msgspec.json.encode({"messages": USER}), None, "missing required field `id`"),
    ("empty messages", chat_payload("bad-1", messages=[]), None, "$.messages"),
    ("messages not a list", chat_payload("bad-2", messages="hi"), None, "$.messages"),
    ("unknown role", chat_payload("bad-3", messages=[{"role": "wizard", "content": "hi"}]), None, "$.messages[0].role"),
    ("wrong type", chat_payload("bad-4", temperature="hot"), None, "$.temperature"),
    ("out of range", chat_payload("bad-5", max_tokens=0), None, "$.max_tokens"),
    ("id not a subject token", chat_payload("has spaces.and dots"), None, "$.id"),
    (
        "unknown content part",
        chat_payload("bad-6", messages=[{"role": "user", "content": [{"type": "video", "url": "x"}]}]),
        None,
        "$.messages[0].content",
    ),
    (
        "oversize",
        chat_payload("bad-7", messages=[{"role": "user", "content": "x" * 5000}]),
        None,
        "HFBUS_MAX_REQUEST_BYTES",
    ),
]


@pytest.mark.parametrize("mode", ["core", "durable"])
async def test_each_bad_request_gets_one_error_and_the_consumer_keeps_serving(
    settings: Settings, router: FakeRouter, nc: NATS, mode: Mode
) -> None:
    settings = replace(settings, mode=mode, max_request_bytes=4096, max_messages=8, max_tokens=4096)
    async with running(settings):
        for name, payload, headers, named in CASES:
            if mode == "durable" and name == "oversize":
                # The stream's max_msg_size is the same limit: JetStream refuses it before it is stored.
                with pytest.raises(BadRequestError, match="message size exceeds"):
                    await nc.jetstream().publish(f"{settings.prefix}.chat", payload, headers=headers)
                continue
            outputs = await _send(nc, settings, payload, headers)
            assert len(outputs) == 1, name
            error = outputs[0]
            assert isinstance(error, Error), name
            assert error.code == ErrorCode.INVALID_REQUEST, name
            assert named in error.message, f"{name}: {error.message}"
            assert error.retryable is False
        assert router.requests == [], "bad input never reaches the router"

        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            good = [o async for o in bus.chat("still there?")]
    assert isinstance(good[-1], ChatResult)


async def _send(nc: NATS, settings: Settings, payload: bytes, headers: dict[str, str] | None) -> list[object]:
    subject = f"{settings.prefix}.chat"
    if settings.mode == "core":
        return await send_raw(nc, subject, payload, headers)
    # Stored requests keep no reply subject: the error goes to the out subject of the id (or `invalid`).
    listener = await nc.subscribe(f"{settings.prefix}.out.chat.>")
    try:
        await nc.jetstream().publish(subject, payload, headers=headers)
        return await collect(listener)
    finally:
        await listener.unsubscribe()
