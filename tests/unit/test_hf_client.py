"""The HF client against a mocked router (aioresponses): wire format, retries, what is never retried."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import orjson
import pytest
from aioresponses import aioresponses

from schemas import ChatMessage, ChatRequest, ErrorCode
from services.errors import ServiceError
from services.hf.answers import ChatDelta
from services.hf.client import HfClient
from services.settings import Secret, Settings

ROUTER = "https://router.test"
CHAT_URL = f"{ROUTER}/v1/chat/completions"
TOKEN = "hf_unitSECRET"


def sse(*events: dict[str, object]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def token_event(text: str) -> dict[str, object]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


STREAM = sse(
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    token_event("Hel"),
    token_event("lo"),
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
)

REQUEST = ChatRequest(id="r1", messages=[ChatMessage(role="user", content="hi")], max_tokens=5)


@pytest.fixture
async def client() -> AsyncIterator[HfClient]:
    settings = Settings(hf_token=Secret(TOKEN), router_url=ROUTER, retry_base_s=0.001, retry_max_s=0.05)
    async with HfClient(settings) as hf:
        yield hf


@pytest.fixture
def router(mocked_http: aioresponses) -> aioresponses:
    return mocked_http


async def stream(client: HfClient, model: str = "org/model") -> tuple[list[ChatDelta], str | None]:
    deltas: list[ChatDelta] = []

    async def on_delta(delta: ChatDelta) -> None:
        deltas.append(delta)

    info = await client.stream_chat(REQUEST, model, on_delta)
    return deltas, info.provider


async def test_a_stream_is_folded_into_deltas_with_usage_and_provider(client: HfClient, router: aioresponses) -> None:
    router.post(CHAT_URL, body=STREAM, headers={"x-inference-provider": "together"})
    deltas, provider = await stream(client)
    assert "".join(d.content for d in deltas) == "Hello"
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None and deltas[-1].usage.total_tokens == 5
    assert provider == "together"


async def test_the_request_is_what_the_router_accepts(client: HfClient, router: aioresponses) -> None:
    router.post(CHAT_URL, body=STREAM)
    await stream(client, model="deepseek-ai/DeepSeek-R1:cheapest")
    ((_, url), calls) = next(iter(router.requests.items()))
    sent = calls[0].kwargs
    assert str(url) == CHAT_URL
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert sent["data"].startswith(b'{"model":"deepseek-ai/DeepSeek-R1:cheapest",')
    assert orjson.loads(sent["data"]) == {
        "model": "deepseek-ai/DeepSeek-R1:cheapest",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 5,
    }


async def test_retry_after_is_honoured_then_the_stream_succeeds(client: HfClient, router: aioresponses) -> None:
    router.post(CHAT_URL, status=429, body=b'{"error":"slow down"}', headers={"Retry-After": "0"})
    router.post(CHAT_URL, status=503, body=b'{"error":"unavailable"}')
    router.post(CHAT_URL, body=STREAM)
    deltas, _ = await stream(client)
    assert "".join(d.content for d in deltas) == "Hello"
    assert client.retries == 2


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
async def test_a_status_that_will_not_change_is_never_retried(
    client: HfClient, router: aioresponses, status: int
) -> None:
    router.post(CHAT_URL, status=status, body=b'{"error":"no"}', repeat=True)
    with pytest.raises(ServiceError) as caught:
        await stream(client)
    assert caught.value.status == status
    assert client.retries == 0


async def test_a_wait_longer_than_the_cap_fails_at_once_and_stays_retryable(
    client: HfClient, router: aioresponses
) -> None:
    router.post(CHAT_URL, status=429, body=b"{}", headers={"Retry-After": "3600"}, repeat=True)
    with pytest.raises(ServiceError) as caught:
        await stream(client)
    assert caught.value.code == ErrorCode.RATE_LIMITED and caught.value.retryable
    assert client.retries == 0


async def test_retries_are_bounded(client: HfClient, router: aioresponses) -> None:
    router.post(CHAT_URL, status=502, body=b"{}", repeat=True)
    with pytest.raises(ServiceError) as caught:
        await stream(client)
    assert caught.value.code == ErrorCode.UPSTREAM_UNAVAILABLE
    assert client.retries == 3


async def test_a_connection_error_is_retried(client: HfClient, router: aioresponses) -> None:
    router.post(CHAT_URL, exception=ConnectionResetError("reset"))
    router.post(CHAT_URL, body=STREAM)
    deltas, _ = await stream(client)
    assert "".join(d.content for d in deltas) == "Hello"


async def test_an_error_event_after_text_is_raised_after_the_text_is_delivered(
    client: HfClient, router: aioresponses
) -> None:
    body = (
        b"data: " + orjson.dumps(token_event("partial")) + b'\n\ndata: {"error":"boom","error_type":"generation"}\n\n'
    )
    router.post(CHAT_URL, body=body, repeat=True)
    deltas: list[ChatDelta] = []

    async def on_delta(delta: ChatDelta) -> None:
        deltas.append(delta)

    with pytest.raises(ServiceError) as caught:
        await client.stream_chat(REQUEST, "org/model", on_delta)
    assert [d.content for d in deltas] == ["partial"]
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR
    assert client.retries == 0


async def test_a_non_streamed_completion_is_parsed(client: HfClient, router: aioresponses) -> None:
    completion = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi!", "reasoning_content": "hmm"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    router.post(CHAT_URL, body=orjson.dumps(completion), headers={"x-inference-provider": "groq"})
    answer = await client.complete_chat(REQUEST, "org/model")
    assert (answer.text, answer.reasoning, answer.finish_reason, answer.provider) == ("Hi!", "hmm", "stop", "groq")
    assert answer.usage.total_tokens == 3
    assert re.search(r'"stream":false', router.requests[next(iter(router.requests))][0].kwargs["data"].decode())
