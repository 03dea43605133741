"""What the gateway charges and refuses: cancel on disconnect billed, limits exact across instances, bad input."""

from __future__ import annotations

import io
import time

import aiohttp
import anyio
import openai
import pytest

from services.dev.fake_router import FakeRouter
from services.gateway.access.limits import WINDOW_S
from services.settings import Settings
from tests.conftest import eventually
from tests.integration.gateway import gateway, gateways

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "hello"}]


async def clear_of_a_window_edge(margin_s: float = 8.0) -> None:
    """Start in a fresh rate window: windows are wall-clock minutes, and a test straddling one sees two budgets."""
    into = time.time() % WINDOW_S
    if into > WINDOW_S - margin_s:
        await anyio.sleep(WINDOW_S - into + 0.1)


async def test_a_client_that_hangs_up_mid_stream_cancels_the_upstream_call_and_pays_for_what_ran(
    any_mode_settings: Settings, router: FakeRouter
) -> None:
    router.pace_s = 0.05  # 40 tokens take 2 s: the hang-up lands mid-stream
    async with gateways(any_mode_settings) as running:
        client = running.client()
        stream = await client.chat.completions.create(
            model="deepseek-r1", messages=MESSAGES, stream=True, max_tokens=40
        )
        received = 0
        async for _ in stream:
            received += 1
            if received == 3:
                break
        await stream.close()
        await eventually(lambda: router.disconnects == 1, within=5)
        spend = await running.spend(within=10, at_least_tokens=1)
        await client.close()

    assert router.completed_streams == 0
    assert 0 < spend["tokens"] < 40
    assert spend["cost_usd"] > 0


async def test_two_gateway_instances_share_one_requests_per_minute_limit_exactly(settings: Settings) -> None:
    await clear_of_a_window_edge()
    async with gateways(settings, instances=2, rpm=3) as running:
        clients = [running.client(0), running.client(1)]
        outcomes: list[str] = []

        async def ask(client: openai.AsyncOpenAI) -> None:
            try:
                await client.chat.completions.create(model="org/model", messages=MESSAGES, max_tokens=1)
                outcomes.append("ok")
            except openai.RateLimitError as refused:
                assert refused.response.headers["x-ratelimit-limit-requests"] == "3"
                assert int(refused.response.headers["retry-after"]) >= 1
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(ask, clients[index % 2])
        for client in clients:
            await client.close()

    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 5


async def test_tokens_per_minute_count_the_reservation_until_the_usage_is_known(settings: Settings) -> None:
    await clear_of_a_window_edge()
    async with gateway(settings, tpm=50) as client:
        await client.chat.completions.create(model="org/model", messages=MESSAGES, max_tokens=30)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model="org/model", messages=MESSAGES, max_tokens=45)

    assert refused.value.response.headers["x-ratelimit-limit-tokens"] == "50"


async def test_a_request_that_could_overrun_the_budget_is_refused_for_good(settings: Settings) -> None:
    # deepseek-r1 costs $2.19 per million output tokens: 100,000 tokens could cost $0.219, over a $0.10 budget.
    async with gateway(settings, budget_usd=0.10) as client:
        small = await client.chat.completions.create(model="deepseek-r1", messages=MESSAGES, max_tokens=5)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model="deepseek-r1", messages=MESSAGES, max_tokens=100_000)

    assert small.choices[0].message.content
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"


async def test_a_key_limited_to_some_models_may_not_use_others(settings: Settings) -> None:
    async with gateway(settings, models=["qwen2.5-coder-32b"]) as client:
        allowed = await client.chat.completions.create(model="qwen2.5-coder-32b", messages=MESSAGES, max_tokens=2)
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await client.chat.completions.create(model="deepseek-r1", messages=MESSAGES, max_tokens=2)

    assert allowed.choices[0].message.content
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "model"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b'{"model": "org/model", "messages": "hello"}', 400, "messages"),
        (b'{"model": "org/model", "messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, None),
        (b'{"model": "org/model", "messages": [{"role": "user", "content": "hi"}], "n": 2}', 400, "n"),
        (b'{"model": "fake/status-404", "messages": [{"role": "user", "content": "hi"}]}', 404, "model"),
        (b'{"model": "org/model", "messages": [{"role": "user", "content": "' + b"x" * (33 << 20) + b'"}]}', 413, None),
    ],
    ids=["malformed", "wrong-type", "bad-role", "no-model", "n", "unknown-model", "oversize"],
)
async def test_bad_input_is_an_openai_shaped_error_naming_the_field(
    settings: Settings, body: bytes, status: int, param: str | None
) -> None:
    async with gateways(settings) as running:
        headers = {"Authorization": f"Bearer {running.key}", "Content-Type": "application/json"}
        url = f"{running.urls[0]}/v1/chat/completions"
        async with aiohttp.ClientSession() as http, http.post(url, data=io.BytesIO(body), headers=headers) as response:
            answer = await response.json()
            request_id = response.headers.get("x-request-id")

    assert response.status == status, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["param"] == param
    assert request_id and request_id.startswith("gw")
