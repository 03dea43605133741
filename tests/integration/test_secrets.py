"""The HF token never reaches a log line, an output message or an error text."""

from __future__ import annotations

import logging

import pytest
from nats.aio.client import Client as NATS

from schemas import ChatResult, Error
from services.client import HfBus
from services.dev.fake_router import FakeRouter, Fault
from services.settings import Settings
from tests.conftest import HF_TOKEN, running

pytestmark = pytest.mark.integration


async def test_the_token_is_in_no_log_and_no_message(
    any_mode_settings: Settings, router: FakeRouter, nc: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    settings = any_mode_settings
    caplog.set_level(logging.DEBUG)
    seen: list[bytes] = []

    async def record(msg: object) -> None:
        seen.append(getattr(msg, "data", b"") + repr(getattr(msg, "headers", None)).encode())

    spy = await nc.subscribe(">", cb=record)
    # An auth failure, then a retried upstream failure (max_retries=3: four calls), then a success.
    router.faults.extend([Fault.status(401)] + [Fault.status(500)] * 4)
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        finals = [[o async for o in bus.chat("hi", model="org/model")][-1] for _ in range(3)]
    await nc.flush()
    await spy.unsubscribe()

    assert [type(f) for f in finals] == [Error, Error, ChatResult]
    assert len(router.requests) == 6
    assert all(r.headers["authorization"] == f"Bearer {HF_TOKEN}" for r in router.requests), "token did reach HF"
    assert seen, "the spy saw the traffic"
    assert not [m for m in seen if HF_TOKEN.encode() in m]
    assert HF_TOKEN not in caplog.text
    assert all(HF_TOKEN not in f.message for f in finals if isinstance(f, Error))
