"""`POST /v1/chat/completions`: an OpenAI chat request onto `ai.chat` (or `ai.pic2text` with image parts).

Streamed answers are server-sent `chat.completion.chunk` events ending with `data: [DONE]`, as the OpenAI SDKs
read them: the role in the first delta, `reasoning_content` and `tool_calls` deltas as they come, a last chunk
with the finish reason, and, with `stream_options.include_usage`, a usage chunk with no choices. An error after
the first chunk is an `error` event, which the SDKs raise; the stream never just stops.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from aiohttp import web

from schemas import ChatMessage, ChatRequest, ChatResult, Chunk, Error, Tag
from schemas.common import JsonObject
from services.gateway.errors import ApiError, bad_request, from_output, sse_error, with_headers
from services.gateway.exchange import Exchange
from services.gateway.requests import field_of, read_json
from services.gateway.state import GATEWAY, REQUEST_ID

DEFAULT_RESERVE_TOKENS = 1024
"""Tokens reserved against a key's limits for a request that names no `max_tokens`, until its usage is known."""


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatBody(msgspec.Struct, kw_only=True):
    """The OpenAI fields hfbus acts on; others (`user`, `logprobs`, ...) are accepted and ignored."""

    model: str
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[JsonObject] | None = None
    tool_choice: str | JsonObject | None = None
    response_format: JsonObject | None = None
    n: int = 1


async def completions(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    request_id = request[REQUEST_ID]
    body = await read_json(request, ChatBody)
    if body.n != 1:
        raise bad_request("only n=1 is supported", param="n")
    chat = _bus_request(body, request_id)
    tag = Tag.PIC2TEXT if _has_images(chat.messages) else Tag.CHAT
    admitted = await gateway.guard.admit(
        request.headers.get("Authorization"),
        model=body.model,
        tag=tag,
        reserve_tokens=chat.max_tokens or DEFAULT_RESERVE_TOKENS,
    )
    exchange = gateway.exchange(gateway.bus.send(tag, chat, first_timeout=120.0, idle_timeout=60.0), admitted)
    view = _View(request_id, body.model)
    headers = {**admitted.headers, "x-request-id": request_id}
    try:
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return await _stream(request, exchange, view, headers, include_usage)
        return await _complete(exchange, view, headers)
    finally:
        await exchange.hang_up()


def _bus_request(body: ChatBody, request_id: str) -> ChatRequest:
    fields: dict[str, Any] = {
        "id": request_id,
        "model": body.model,
        "messages": body.messages,
        "stream": body.stream,
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "stop": body.stop,
        "seed": body.seed,
        "tools": body.tools,
        "tool_choice": body.tool_choice,
        "response_format": body.response_format,
    }
    try:
        # convert, not the constructor: the contract's constraints (temperature 0..2, ...) are checked here.
        return msgspec.convert({k: v for k, v in fields.items() if v is not None}, ChatRequest, from_attributes=True)
    except msgspec.ValidationError as exc:
        raise bad_request(str(exc), param=field_of(exc)) from None


def _has_images(messages: list[ChatMessage]) -> bool:
    return any(
        isinstance(m.content, list) and any(getattr(p, "type", None) == "image_url" for p in m.content)
        for m in messages
    )


class _View:
    """The OpenAI objects of one completion: ids, timestamps, model, built from the bus outputs."""

    def __init__(self, request_id: str, model: str) -> None:
        self.id = f"chatcmpl-{request_id}"
        self.created = int(time.time())
        self.model = model
        self.role_sent = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._event({"choices": [choice]})

    def usage(self, result: ChatResult) -> bytes:
        # hfbus extras, as on a non-streamed completion: who served it and what it cost (SDKs keep unknown fields).
        return self._event(
            {"choices": [], "usage": _usage(result), "provider": result.provider, "cost_usd": result.cost_usd}
        )

    def _event(self, fields: dict[str, Any]) -> bytes:
        head = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return b"data: " + orjson.dumps({**head, **fields}) + b"\n\n"

    def delta(self, chunk: Chunk) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if not self.role_sent:
            delta["role"] = "assistant"
            self.role_sent = True
        if chunk.delta:
            delta["content"] = chunk.delta
        if chunk.reasoning:
            delta["reasoning_content"] = chunk.reasoning
        if chunk.tool_calls:
            delta["tool_calls"] = chunk.tool_calls
        return delta

    def completion(self, result: ChatResult) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": result.text}
        if result.reasoning:
            message["reasoning_content"] = result.reasoning
        if result.tool_calls:
            message["tool_calls"] = result.tool_calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": result.model or self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason, "logprobs": None}],
            "usage": _usage(result),
            # hfbus extras: who served it and what it cost (the SDKs keep unknown fields).
            "provider": result.provider,
            "cost_usd": result.cost_usd,
        }


def _usage(result: ChatResult) -> dict[str, int]:
    usage = result.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


async def _complete(exchange: Exchange, view: _View, headers: dict[str, str]) -> web.Response:
    async for output in exchange.outputs():
        if isinstance(output, ChatResult):
            return web.Response(
                body=orjson.dumps(view.completion(output)), content_type="application/json", headers=headers
            )
        if isinstance(output, Error):
            raise with_headers(from_output(output), headers)
    raise ApiError(500, "the request ended without an answer", type="server_error", code="internal")


async def _stream(
    request: web.Request, exchange: Exchange, view: _View, headers: dict[str, str], include_usage: bool
) -> web.StreamResponse:
    response: web.StreamResponse | None = None
    async for output in exchange.outputs():
        if isinstance(output, Error) and response is None:
            # Nothing sent yet: a plain HTTP error, so the SDK raises its status-specific exception.
            raise with_headers(from_output(output), headers)
        if response is None:
            response = web.StreamResponse(
                headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
        if isinstance(output, Chunk):
            await response.write(view.chunk(view.delta(output)))
        elif isinstance(output, ChatResult):
            if not view.role_sent:  # a stream without chunks (empty answer) still names the role once
                await response.write(view.chunk(view.delta(Chunk(id=output.id, seq=0))))
            await response.write(view.chunk({}, output.finish_reason or "stop"))
            if include_usage:
                await response.write(view.usage(output))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        elif isinstance(output, Error):
            await response.write(sse_error(from_output(output)))
            await response.write_eof()
            return response
    raise ApiError(500, "the request ended without an answer", type="server_error", code="internal")
