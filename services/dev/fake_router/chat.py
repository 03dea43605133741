"""`POST /v1/chat/completions`: the router's OpenAI-compatible chat route, streamed and not."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from .faults import (
    Fault,
    ServerStopping,
    abort,
    auth_error,
    bad_request,
    error_event_response,
    fault_for_model,
    json_response,
    pause,
    status_response,
)

logger = logging.getLogger(__name__)

PATH = "/v1/chat/completions"
PREAMBLE = "This is a simulated answer from the hfbus offline router. You asked:"
REASONING_WORDS = ("Let", "me", "think")
REASONING_TEXT = "".join(f"{word} " for word in REASONING_WORDS)
"""The `reasoning_content` a `deepseek-r1` model produces before its answer."""

TOOL_CALL_ID = "call_1"
TOOL_ARGUMENT_FRAGMENTS = ('{"q": ', '"x"}')
_POLICIES = frozenset({"fastest", "cheapest", "preferred"})
# One write per batch keeps a fast stream from paying an await per token.
_BATCH_BYTES = 64 * 1024
_DONE = b"data: [DONE]\n\n"


class ChatState(Protocol):
    """What the chat route reads and counts on the router that owns it."""

    token: str | None
    pace_s: float
    first_token_s: float
    default_tokens: int
    provider: str
    faults: deque[Fault]
    disconnects: int
    completed_streams: int
    in_flight: int
    shutting_down: bool


def message_text(message: object) -> str:
    """The text of one chat message: a string content, or its `text` parts joined by spaces."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def iter_tokens(messages: Sequence[Mapping[str, Any]], n_tokens: int) -> Iterator[str]:
    """The answer as `n_tokens` tokens: one word each, followed by a space except the last."""
    last_user = next((m for m in reversed(messages) if isinstance(m, Mapping) and m.get("role") == "user"), None)
    words = f"{PREAMBLE} {message_text(last_user)}".split()
    for i in range(n_tokens):
        word = words[i % len(words)]
        yield word if i == n_tokens - 1 else word + " "


def expected_text(messages: Sequence[Mapping[str, Any]], n_tokens: int) -> str:
    """The full answer text the fake router gives for `messages` and `n_tokens`."""
    return "".join(iter_tokens(messages, n_tokens))


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """The word count over every message's text, reported as `usage.prompt_tokens`."""
    return sum(len(message_text(m).split()) for m in messages)


class InvalidChatRequest(ValueError):
    """The body is not a chat request the router would accept."""


@dataclass(frozen=True)
class ChatCall:
    """The parts of a chat request body that shape the answer."""

    model: str
    provider: str
    messages: list[Any]
    max_tokens: int | None
    stream: bool
    include_usage: bool
    tool_name: str | None

    @property
    def reasons(self) -> bool:
        """Whether the model streams reasoning before answering."""
        return "deepseek-r1" in self.model.lower()

    @property
    def trigger(self) -> str:
        """The model id without its `:policy` or `:provider` suffix."""
        return self.model.partition(":")[0]


def parse_chat(body: bytes, default_provider: str) -> ChatCall:
    """Validate a chat body; raises InvalidChatRequest naming the bad field."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidChatRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidChatRequest("Request body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidChatRequest("`model` must be a non-empty string")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidChatRequest("`messages` must be a non-empty list")
    max_tokens = data.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0):
        raise InvalidChatRequest("`max_tokens` must be a non-negative integer")
    stream_options = data.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    suffix = model.partition(":")[2]
    return ChatCall(
        model=model,
        provider=suffix if suffix and suffix not in _POLICIES else default_provider,
        messages=messages,
        max_tokens=max_tokens,
        stream=data.get("stream") is True,
        include_usage=include_usage,
        tool_name=_first_tool_name(data.get("tools")),
    )


def _first_tool_name(tools: object) -> str | None:
    if tools is None or tools == []:
        return None
    if not isinstance(tools, list):
        raise InvalidChatRequest("`tools` must be a list")
    first = tools[0]
    function = first.get("function") if isinstance(first, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidChatRequest("`tools[0].function.name` must be a non-empty string")
    return name


class ChatRoute:
    """The chat completions handler bound to the router state it counts on."""

    def __init__(self, state: ChatState) -> None:
        self._state = state

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one chat request: 401, 400, an injected fault, a stream or a JSON completion."""
        state = self._state
        headers = {"x-request-id": str(uuid.uuid4())}
        denied = auth_error(request, state.token)
        if denied is not None:
            denied.headers.update(headers)
            return denied
        try:
            call = parse_chat(await request.read(), state.provider)
        except InvalidChatRequest as exc:
            rejected = bad_request(str(exc))
            rejected.headers.update(headers)
            return rejected
        headers["x-inference-provider"] = call.provider
        fault = state.faults.popleft() if state.faults else fault_for_model(call.trigger)
        if fault is not None:
            logger.debug("injecting %s fault for model %s", fault.kind, call.model)
        if fault is not None and fault.kind == "status":
            return status_response(fault, call.model, headers)
        if call.stream:
            return await self._stream(request, call, fault, headers)
        return await self._complete(request, call, fault, headers)

    def _is_stopping(self) -> bool:
        return self._state.shutting_down

    async def _complete(
        self, request: web.Request, call: ChatCall, fault: Fault | None, headers: dict[str, str]
    ) -> web.StreamResponse:
        if fault is not None and fault.kind == "drop":
            abort(request)
            return web.Response()
        if fault is not None and fault.kind == "error_event":
            return error_event_response(fault, headers)
        if fault is not None and fault.kind == "stall":
            try:
                await pause(request, fault.seconds, self._is_stopping)
            except ConnectionResetError:
                self._state.disconnects += 1
                return web.Response()
            except asyncio.CancelledError:
                self._state.disconnects += 1
                raise
            except ServerStopping:
                abort(request)
                return web.Response()
        return json_response(200, _Answer(call, self._state.default_tokens).completion(), headers)

    async def _stream(
        self, request: web.Request, call: ChatCall, fault: Fault | None, headers: dict[str, str]
    ) -> web.StreamResponse:
        state = self._state
        answer = _Answer(call, state.default_tokens)
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = "text/event-stream"
        sink = _Sink(response)
        fault_at = fault.after_tokens if fault is not None else -1
        state.in_flight += 1
        try:
            await response.prepare(request)
            index = -1
            for index, event in enumerate(answer.body_events()):
                if index == fault_at and fault is not None and not await self._inject(request, fault, sink, answer):
                    return response
                delay = state.first_token_s if index == 0 else state.pace_s
                if delay > 0:
                    await sink.flush()
                    await pause(request, delay, self._is_stopping)
                if index == 0:
                    await sink.add(answer.role_event())
                await sink.add(event)
                if state.pace_s > 0:
                    await sink.flush()
            if fault is not None and fault_at > index and not await self._inject(request, fault, sink, answer):
                return response
            if index < 0:
                await sink.add(answer.role_event())
            for event in answer.tail_events():
                await sink.add(event)
            await sink.add(_DONE)
            await sink.flush()
            state.completed_streams += 1
            return response
        except ConnectionResetError:
            state.disconnects += 1
            return response
        except asyncio.CancelledError:
            state.disconnects += 1
            raise
        except ServerStopping:
            abort(request)
            return response
        finally:
            state.in_flight -= 1

    async def _inject(self, request: web.Request, fault: Fault, sink: _Sink, answer: _Answer) -> bool:
        """Play a stream fault; False when the stream is over."""
        await sink.flush()
        if fault.kind == "stall":
            await pause(request, fault.seconds, self._is_stopping)
            return True
        if fault.kind == "error_event":
            await sink.add(answer.error_event(fault))
            await sink.flush()
        else:
            abort(request)
        return False


class _Sink:
    """Buffers SSE bytes and writes them in large chunks."""

    def __init__(self, response: web.StreamResponse) -> None:
        self._response = response
        self._buffer = bytearray()

    async def add(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _BATCH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            # A copy, because the transport may keep a reference to what it could not send yet.
            data = bytes(self._buffer)
            self._buffer.clear()
            await self._response.write(data)


class _Answer:
    """The deterministic answer to one call, as SSE events or as one completion object."""

    def __init__(self, call: ChatCall, default_tokens: int) -> None:
        self._call = call
        self._n_tokens = call.max_tokens if call.max_tokens is not None else default_tokens
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        marker = f"@{uuid.uuid4().hex}@"
        # Content events are the hot path: splice each token into a pre-encoded event instead of encoding a dict.
        prefix, _, suffix = self._chunk({"content": marker}, None).partition(orjson.dumps(marker))
        self._content_prefix = prefix
        self._content_suffix = suffix

    @property
    def _finish_reason(self) -> str:
        if self._call.tool_name is not None:
            return "tool_calls"
        return "length" if self._call.max_tokens is not None else "stop"

    @property
    def _completion_tokens(self) -> int:
        return len(TOOL_ARGUMENT_FRAGMENTS) + 1 if self._call.tool_name is not None else self._n_tokens

    def _usage(self) -> dict[str, int]:
        prompt = prompt_tokens(self._call.messages)
        completion = self._completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self._event({"choices": [choice]})

    def _event(self, extra: dict[str, Any]) -> bytes:
        head = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._call.model}
        return b"data: " + orjson.dumps(head | extra) + b"\n\n"

    def role_event(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""}, None)

    def body_events(self) -> Iterator[bytes]:
        """Reasoning, then content tokens or tool-call fragments: the events faults and pacing count."""
        if self._call.reasons:
            for word in REASONING_WORDS:
                yield self._chunk({"reasoning_content": f"{word} "}, None)
        name = self._call.tool_name
        if name is not None:
            function = {"name": name, "arguments": ""}
            yield self._chunk(
                {"tool_calls": [{"index": 0, "id": TOOL_CALL_ID, "type": "function", "function": function}]}, None
            )
            for fragment in TOOL_ARGUMENT_FRAGMENTS:
                yield self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}, None)
            return
        prefix, suffix = self._content_prefix, self._content_suffix
        for token in iter_tokens(self._call.messages, self._n_tokens):
            yield prefix + orjson.dumps(token) + suffix

    def tail_events(self) -> Iterator[bytes]:
        """The finish event and, when asked for, the usage event."""
        yield self._chunk({}, self._finish_reason)
        if self._call.include_usage:
            yield self._event({"choices": [], "usage": self._usage()})

    def error_event(self, fault: Fault) -> bytes:
        return b"data: " + orjson.dumps({"error": fault.message, "error_type": fault.error_type}) + b"\n\n"

    def completion(self) -> dict[str, Any]:
        """The non-streamed `chat.completion` object."""
        call = self._call
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if call.reasons:
            message["reasoning_content"] = REASONING_TEXT
        if call.tool_name is not None:
            arguments = "".join(TOOL_ARGUMENT_FRAGMENTS)
            function = {"name": call.tool_name, "arguments": arguments}
            message["tool_calls"] = [{"id": TOOL_CALL_ID, "type": "function", "function": function}]
        else:
            message["content"] = expected_text(call.messages, self._n_tokens)
        return {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": call.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish_reason}],
            "usage": self._usage(),
        }


def add_routes(app: web.Application, state: ChatState) -> None:
    """Register the chat route on `app`."""
    app.router.add_post(PATH, ChatRoute(state).handle)
