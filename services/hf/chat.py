"""The router's chat wire format, pure: request body out, stream events and completions in.

Upstream payloads are not our contract, so they decode into view structs that declare only what we read.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import ChatMessage, ChatRequest, TokenUsage
from schemas.common import JsonObject
from services.errors import ServiceError
from services.hf.answers import ChatAnswer, ChatDelta
from services.hf.errors import error_for_event
from services.hf.sse import DONE


class _Body(msgspec.Struct, omit_defaults=True, kw_only=True):
    # `model` comes first so the router can route without buffering large image payloads (both HF clients do this).
    model: str
    messages: list[ChatMessage]
    stream: bool  # no default: always sent, as huggingface_hub does
    stream_options: dict[str, bool] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[JsonObject] | None = None
    tool_choice: str | JsonObject | None = None
    response_format: JsonObject | None = None


_INCLUDE_USAGE = {"include_usage": True}
_encoder = msgspec.json.Encoder()


def chat_body(request: ChatRequest, model: str, *, stream: bool) -> bytes:
    """The `POST /v1/chat/completions` body; the model string goes verbatim, policy suffix included."""
    return _encoder.encode(
        _Body(
            model=model,
            messages=request.messages,
            stream=stream,
            # Without it the router never reports usage for a stream, and usage is what gets billed.
            stream_options=_INCLUDE_USAGE if stream else None,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stop,
            seed=request.seed,
            tools=request.tools,
            tool_choice=request.tool_choice,
            response_format=request.response_format,
        )
    )


# The stream's view structs are made per event and never hold a cycle: untracked by the collector
# (`gc=False`), so thousands of events a second do not trigger collections.
class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[JsonObject] | None = None


class _Choice(msgspec.Struct, gc=False):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _StreamEvent(msgspec.Struct, gc=False):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: Any = None
    error_type: str | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[JsonObject] | None = None


class _CompletionChoice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_CompletionChoice]
    usage: _Usage | None = None


_event_decoder = msgspec.json.Decoder(_StreamEvent)
_completion_decoder = msgspec.json.Decoder(_Completion)


def fold_events(payloads: list[bytes]) -> tuple[ChatDelta, bool, ServiceError | None]:
    """Fold the events of one socket read into one delta; True once `[DONE]` was seen.

    An `{"error": …}` event ends the fold and comes back as the matching `ServiceError` leaf, so the
    text before it can still be published. Raises `msgspec.DecodeError` for an event that is not JSON.
    """
    if len(payloads) == 1 and payloads[0] != DONE:
        return _fold_one(payloads[0])
    content: list[str] = []
    reasoning: list[str] = []
    delta = ChatDelta()
    done = False
    failure: ServiceError | None = None
    for payload in payloads:
        if payload == DONE:
            done = True
            break
        event = _event_decoder.decode(payload)
        if event.error is not None:
            failure = error_for_event(event.error, event.error_type)
            break
        if event.usage is not None:
            delta.usage = TokenUsage(
                prompt_tokens=event.usage.prompt_tokens,
                completion_tokens=event.usage.completion_tokens,
                total_tokens=event.usage.total_tokens,
            )
        if not event.choices:  # the usage event has `choices: []`
            continue
        choice = event.choices[0]
        if choice.finish_reason:
            delta.finish_reason = choice.finish_reason
        if (piece := choice.delta) is None:
            continue
        if piece.content or piece.reasoning_content or piece.reasoning or piece.tool_calls:
            delta.tokens += 1
        if piece.content:
            content.append(piece.content)
        if thinking := piece.reasoning_content or piece.reasoning:
            reasoning.append(thinking)
        if piece.tool_calls:
            delta.tool_calls = (delta.tool_calls or []) + piece.tool_calls
    delta.content = content[0] if len(content) == 1 else "".join(content)
    delta.reasoning = "".join(reasoning)
    return delta, done, failure


def _fold_one(payload: bytes) -> tuple[ChatDelta, bool, ServiceError | None]:
    # `fold_events` for the one event of a read (a paced stream's every read): the same rules, without the lists.
    event = _event_decoder.decode(payload)
    if event.error is not None:
        return ChatDelta(), False, error_for_event(event.error, event.error_type)
    delta = ChatDelta()
    if event.usage is not None:
        delta.usage = TokenUsage(
            prompt_tokens=event.usage.prompt_tokens,
            completion_tokens=event.usage.completion_tokens,
            total_tokens=event.usage.total_tokens,
        )
    if not event.choices:
        return delta, False, None
    choice = event.choices[0]
    if choice.finish_reason:
        delta.finish_reason = choice.finish_reason
    if (piece := choice.delta) is None:
        return delta, False, None
    if piece.content or piece.reasoning_content or piece.reasoning or piece.tool_calls:
        delta.tokens = 1
    delta.content = piece.content or ""
    delta.reasoning = piece.reasoning_content or piece.reasoning or ""
    if piece.tool_calls:
        delta.tool_calls = piece.tool_calls
    return delta, False, None


def parse_completion(body: bytes, provider: str | None, router_request_id: str | None = None) -> ChatAnswer:
    """A non-streamed `chat.completion` reply; raises `msgspec.DecodeError` when it is not one."""
    completion = _completion_decoder.decode(body)
    if not completion.choices:
        raise msgspec.ValidationError("completion has no choices")
    choice = completion.choices[0]
    usage = completion.usage or _Usage()
    return ChatAnswer(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason,
        usage=TokenUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
        provider=provider,
        reasoning=choice.message.reasoning_content or choice.message.reasoning,
        tool_calls=choice.message.tool_calls,
        router_request_id=router_request_id,
    )
