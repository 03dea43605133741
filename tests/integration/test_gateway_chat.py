"""The gateway's chat endpoint as the official `openai` SDK sees it, against real consumers and the fake router."""

from __future__ import annotations

from dataclasses import replace

import openai
import pytest

from services.dev.fake_router import FakeRouter, expected_text
from services.dev.fake_router.chat import REASONING_TEXT, prompt_tokens
from services.settings import Settings
from tests.integration.gateway import gateway

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "hello gateway"}]


async def test_a_streamed_completion_arrives_as_chunks_then_done(any_mode_settings: Settings) -> None:
    async with gateway(any_mode_settings) as client:
        stream = await client.chat.completions.create(model="org/model", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text(MESSAGES, 16)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


async def test_include_usage_adds_a_usage_chunk_without_choices_before_done(settings: Settings) -> None:
    async with gateway(settings) as client:
        stream = await client.chat.completions.create(
            model="org/model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 16
    assert chunks[-1].usage.prompt_tokens == prompt_tokens(MESSAGES)
    assert all(c.usage is None for c in chunks[:-1])


async def test_a_completion_without_streaming_is_one_chat_completion(any_mode_settings: Settings) -> None:
    async with gateway(any_mode_settings) as client:
        completion = await client.chat.completions.create(model="org/model", messages=MESSAGES, max_tokens=5)

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == expected_text(MESSAGES, 5)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5


async def test_reasoning_streams_as_reasoning_content(settings: Settings) -> None:
    async with gateway(settings) as client:
        stream = await client.chat.completions.create(model="deepseek-ai/DeepSeek-R1", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]

    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning == REASONING_TEXT


async def test_tool_call_deltas_assemble_into_one_call(settings: Settings) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    async with gateway(settings) as client:
        stream = await client.chat.completions.create(
            model="org/model",
            messages=MESSAGES,
            stream=True,
            tools=tools,  # type: ignore[arg-type]
        )
        chunks = [chunk async for chunk in stream]

    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert arguments.startswith("{") and arguments.endswith("}")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("model", "exception"),
    [
        ("fake/status-401", openai.AuthenticationError),
        ("fake/status-402", openai.APIStatusError),
        ("fake/status-429", openai.RateLimitError),
        ("fake/status-503", openai.InternalServerError),
    ],
)
async def test_an_upstream_error_before_any_token_is_the_sdks_status_exception(
    settings: Settings, router: FakeRouter, model: str, exception: type[openai.APIStatusError]
) -> None:
    settings = replace(settings, max_retries=0)
    async with gateway(settings) as client:
        with pytest.raises(exception) as raised:
            await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)

    assert raised.value.response.headers["x-request-id"].startswith("gw")
    assert isinstance(raised.value.body, dict) and raised.value.body["code"]


async def test_an_error_mid_stream_is_raised_by_the_sdk_not_a_silent_end(settings: Settings) -> None:
    async with gateway(settings) as client:
        stream = await client.chat.completions.create(model="fake/error-event", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass


async def test_an_invalid_request_is_a_400_naming_the_field(settings: Settings) -> None:
    async with gateway(settings) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model="org/model", messages=MESSAGES, temperature=3.5)

    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "temperature"


async def test_a_missing_or_unknown_key_is_a_401(settings: Settings) -> None:
    async with gateway(settings) as client:
        stranger = client.with_options(api_key="hfb-not-a-key")
        with pytest.raises(openai.AuthenticationError):
            await stranger.chat.completions.create(model="org/model", messages=MESSAGES)
