"""Per-tag defaults in NATS KV: consumers apply a change to the next request without a restart, and every
finished request is reported on `<prefix>.events.done.<tag>`."""

from __future__ import annotations

import anyio
import msgspec
import pytest
from nats.aio.client import Client as NATS

from schemas import Tag
from schemas.operations import DoneEvent, TagDefaults
from services.bus.defaults import DefaultsBucket
from services.client import HfBus
from services.consumer.app import App
from services.dev.fake_router import FakeRouter
from services.settings import Settings
from tests.conftest import running

pytestmark = pytest.mark.integration


async def applied(apps: list[App], revision: int, *, within: float = 5.0) -> None:
    """Wait until every consumer has applied the bucket up to `revision`."""
    with anyio.fail_after(within):
        # Polling: the watcher has no event to wait on, and this is what $SRV.INFO reports too.
        while any(app.defaults.revision < revision for app in apps):  # noqa: ASYNC110
            await anyio.sleep(0.01)


def upstream_models(router: FakeRouter) -> list[str]:
    return [r.json()["model"] for r in router.requests if r.path == "/v1/chat/completions"]


async def test_a_strategy_change_reaches_every_consumer_without_a_restart(
    any_mode_settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    settings = any_mode_settings
    bucket = await DefaultsBucket.open(nc, settings)
    async with running(settings) as first, running(settings) as second:
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            await bus.chat("before").result()
            revision = await bucket.put(Tag.CHAT, TagDefaults(strategy="cheapest"))
            await applied([first, second], revision)
            for _ in range(2):  # both consumers of the queue group have it: any may take a request
                await bus.chat("after").result()
            await bus.chat("own suffix wins", model="deepseek-r1:together").result()

            revision = await bucket.put(Tag.CHAT, TagDefaults(model="qwen2.5-coder-32b", strategy="auto"))
            await applied([first, second], revision)
            await bus.chat("new default model").result()

            revision = await bucket.clear(Tag.CHAT)
            await applied([first, second], revision)
            await bus.chat("catalog again").result()

    assert upstream_models(router) == [
        "deepseek-ai/DeepSeek-R1:fastest",  # the catalog's policy for its default model
        "deepseek-ai/DeepSeek-R1:cheapest",
        "deepseek-ai/DeepSeek-R1:cheapest",
        "deepseek-ai/DeepSeek-R1:together",
        "Qwen/Qwen2.5-Coder-32B-Instruct",  # auto: no suffix, the router decides
        "deepseek-ai/DeepSeek-R1:fastest",
    ]


async def test_defaults_stored_before_a_consumer_starts_apply_to_its_first_request(
    settings: Settings, router: FakeRouter, nc: NATS
) -> None:
    bucket = await DefaultsBucket.open(nc, settings)
    await bucket.put(Tag.TEXT2PIC, TagDefaults(strategy="replicate"))
    async with running(settings), HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        result = await bus.image("a lighthouse").result()

    assert result.provider == "replicate"


async def test_every_finished_request_is_one_done_event(settings: Settings, router: FakeRouter, nc: NATS) -> None:
    events = await nc.subscribe(f"{settings.prefix}.events.done.*")
    async with running(settings) as app, HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
        result = await bus.chat("hello").result()
        failed = bus.chat("nobody", model="no-such-model")
        with pytest.raises(Exception, match="no-such-model"):
            await failed.result()
        received = [msgspec.json.decode((await events.next_msg(timeout=5)).data, type=DoneEvent) for _ in range(2)]

    ok = next(e for e in received if e.outcome == "ok")
    assert ok.tag is Tag.CHAT and ok.model == result.model and ok.provider == result.provider
    assert ok.completion_tokens == result.usage.completion_tokens and ok.cost_usd == result.cost_usd
    assert ok.ttft_s is not None and ok.duration_s >= ok.ttft_s and ok.consumer == app.instance_id
    assert {e.outcome for e in received} == {"ok", "unknown_model"}
