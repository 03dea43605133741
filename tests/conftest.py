"""Fixtures: a real nats-server per session, the fake router per test, and a way to run consumers in a test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nats
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from schemas import ChatOutput, ChatResult, Error
from schemas.codec import codec_for
from services.bus import natsserver
from services.consumer.app import App
from services.dev.fake_router import FakeRouter
from services.settings import Secret, Settings

HF_TOKEN = "hf_TESTSECRETdoNotLeak0123456789"
"""The token every test consumer uses; the secrecy tests look for it in everything captured."""


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[natsserver.NatsServer]:
    server = natsserver.start(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    """A subject prefix of its own per test, so tests never see each other's traffic or streams."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    fake = FakeRouter(token=HF_TOKEN)
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
def settings(nats_server: natsserver.NatsServer, router: FakeRouter, prefix: str) -> Settings:
    return Settings(
        nats_url=nats_server.url,
        hf_token=Secret(HF_TOKEN),
        router_url=router.url,
        hub_url=router.url,
        media_allow_hosts=frozenset({"127.0.0.1"}),
        mode="core",
        prefix=prefix,
        http_addr="127.0.0.1:0",
        first_token_timeout_s=2.0,
        idle_timeout_s=1.0,
        request_timeout_s=5.0,
        retry_base_s=0.01,
        retry_max_s=0.2,
        shutdown_grace_s=5.0,
        ack_wait_s=5.0,
        log_level="DEBUG",
    )


@pytest.fixture(params=["core", "durable"])
def any_mode_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return replace(settings, mode=request.param)


@pytest.fixture
async def nc(nats_server: natsserver.NatsServer) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    # close, not drain: a test may leave unread messages on a subscription, and drain would wait for them.
    await client.close()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[App]:
    """Run the consumers of `settings` inside the test body (never across a fixture's yield)."""
    app = App(settings)
    async with anyio.create_task_group() as tg:
        await tg.start(app.run)
        try:
            yield app
        finally:
            app.stop()


async def collect(subscription: Any, *, within: float = 10.0) -> list[Any]:
    """Read chat outputs from a subscription until the final one; fail after `within` seconds."""
    outputs: list[Any] = []
    with anyio.fail_after(within):
        while True:
            msg = await subscription.next_msg(timeout=within)
            output = codec_for(msg.headers).decode(msg.data, ChatOutput)
            outputs.append(output)
            if isinstance(output, ChatResult | Error):
                return outputs


async def send_raw(
    nc: NATS, subject: str, payload: bytes, headers: dict[str, str] | None = None, *, within: float = 10.0
) -> list[Any]:
    """Publish raw bytes as a core request and collect the outputs sent to its reply subject."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    try:
        await nc.publish(subject, payload, reply=inbox, headers=headers)
        return await collect(subscription, within=within)
    finally:
        await subscription.unsubscribe()


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until `condition()` holds; fail after `within` seconds."""
    with anyio.fail_after(within):
        # Polling: the counters observed here (fake router, runners) offer no event to wait on.
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def chat_payload(request_id: str | None = None, **fields: Any) -> bytes:
    body: dict[str, Any] = {"id": request_id or uuid.uuid4().hex, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return msgspec.json.encode(body)


def assert_well_formed(outputs: list[Any]) -> None:
    """seq rises by one from 0 and exactly one final output closes the stream."""
    assert [o.seq for o in outputs] == list(range(len(outputs)))
    finals = [o for o in outputs if isinstance(o, ChatResult | Error)]
    assert len(finals) == 1 and finals[0] is outputs[-1]


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail any test whose captured logs or output contain the HF token: secrets never reach a log line."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    leaked = [name for name, text in report.sections if HF_TOKEN in text]
    if leaked and report.passed:
        report.outcome = "failed"
        report.longrepr = f"the HuggingFace token appeared in captured output: {', '.join(leaked)}"
