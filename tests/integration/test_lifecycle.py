"""A consumer process as operators run it: SIGTERM with streams in flight finishes them and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace

import anyio
import pytest
from anyio.abc import Process

from schemas import ChatResult
from services.client import HfBus
from services.dev.fake_router import FakeRouter, expected_text
from services.settings import Mode, Settings
from tests.conftest import HF_TOKEN, eventually, running

pytestmark = pytest.mark.integration


async def _start_consumer(settings: Settings, mode: Mode, log: bytearray) -> Process:
    env = {
        **os.environ,
        "NATS_URL": settings.nats_url,
        "HF_ROUTER_URL": settings.router_url,
        "HUGGINGFACE_API_KEY": HF_TOKEN,
        "HFBUS_MODE": mode,
        "HFBUS_PREFIX": settings.prefix,
        "HFBUS_TAGS": "chat",
        "HFBUS_SHUTDOWN_GRACE": "20",
        "HFBUS_HTTP_ADDR": "127.0.0.1:0",
        "HFBUS_LOG_LEVEL": "DEBUG",
    }
    process = await anyio.open_process([sys.executable, "-m", "services", "run"], env=env, stderr=subprocess.PIPE)
    assert process.stderr is not None
    with anyio.fail_after(15):
        async for data in process.stderr:
            log += data
            if b"serving chat" in log:
                return process
    raise AssertionError(f"consumer did not start:\n{log.decode()}")


async def _drain(process: Process, log: bytearray) -> None:
    assert process.stderr is not None
    async for data in process.stderr:
        log += data


@pytest.mark.parametrize("mode", ["core", "durable"])
async def test_sigterm_with_streams_in_flight_finishes_them_and_exits_0(
    settings: Settings, router: FakeRouter, mode: Mode
) -> None:
    router.pace_s = 0.02  # 40 tokens: 0.8 s per stream, so SIGTERM lands mid-stream
    log = bytearray()
    process = await _start_consumer(settings, mode, log)
    results: list[object] = []
    try:
        async with anyio.create_task_group() as tg, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            tg.start_soon(_drain, process, log)

            async def one(i: int) -> None:
                outputs = [o async for o in bus.chat(f"stream {i}", model="org/model", max_tokens=40)]
                results.append(outputs[-1])

            for i in range(5):
                tg.start_soon(one, i)
            await eventually(lambda: router.in_flight == 5)
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                exit_code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()

    assert exit_code == 0, log.decode()
    assert len(results) == 5
    for result in results:
        assert isinstance(result, ChatResult)
        assert result.finish_reason == "length"
        assert result.text in {expected_text([{"role": "user", "content": f"stream {i}"}], 40) for i in range(5)}
    assert router.completed_streams == 5
    assert HF_TOKEN.encode() not in log, "the token reached a log line"


async def test_a_durable_consumer_stopping_with_no_grace_hands_its_requests_to_another(
    settings: Settings, router: FakeRouter
) -> None:
    router.pace_s = 0.02
    settings = replace(settings, mode="durable", shutdown_grace_s=0.0, concurrency=4)
    results: list[object] = []
    async with running(settings) as leaving, running(settings) as staying:
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus, anyio.create_task_group() as tg:

            async def one(i: int) -> None:
                outputs = [o async for o in bus.chat(f"stream {i}", model="org/model", max_tokens=40)]
                results.append(outputs[-1])

            for i in range(8):
                tg.start_soon(one, i)
            await eventually(lambda: len(leaving.inflight.running) > 0 and router.in_flight >= 8)
            handed_back = len(leaving.inflight.running)
            leaving.stop()

    assert len(results) == 8 and all(isinstance(r, ChatResult) for r in results)
    assert sum(1 for r in results if isinstance(r, ChatResult) and r.attempt == 2) == handed_back
    assert staying.runners["chat"].counters.redelivered == handed_back
