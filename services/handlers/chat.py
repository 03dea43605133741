"""`chat` and `pic2text`: stream the router's deltas as chunks, then one result with the whole answer."""

from __future__ import annotations

from schemas import ChatRequest, ChatResult, TokenUsage
from schemas.common import JsonObject
from services.catalog import token_cost
from services.errors import InvalidRequest
from services.handlers.seams import ChatDelta, Context, Limits

Request = ChatRequest


async def handle(request: ChatRequest, ctx: Context) -> None:
    """Answer one chat request; `stream: false` sends only the result."""
    _check_limits(request, ctx.limits)
    resolved = ctx.resolve(request.model)
    model = resolved.model_string
    if not request.stream:
        answer = await ctx.upstream.complete_chat(request, model)
        await ctx.result(
            ChatResult,
            text=answer.text,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            reasoning=answer.reasoning,
            tool_calls=answer.tool_calls,
            model=model,
            provider=answer.provider,
            router_request_id=answer.router_request_id,
            cost_usd=token_cost(resolved.entry, answer.usage),
        )
        return

    transcript = _Transcript()
    ctx.track_usage(transcript.usage_so_far)
    info = await ctx.upstream.stream_chat_to(request, model, _Relay(ctx, transcript))
    usage = transcript.usage or TokenUsage()
    await ctx.result(
        ChatResult,
        text="".join(transcript.text),
        finish_reason=transcript.finish_reason,
        usage=usage,
        cost_usd=token_cost(resolved.entry, usage),
        reasoning="".join(transcript.reasoning) or None,
        tool_calls=transcript.tool_calls(),
        model=model,
        provider=info.provider,
        router_request_id=info.router_request_id,
    )


def _check_limits(request: ChatRequest, limits: Limits) -> None:
    if len(request.messages) > limits.max_messages:
        raise InvalidRequest(
            f"messages: {len(request.messages)} messages; the limit is {limits.max_messages} (HFBUS_MAX_MESSAGES)"
        )
    if request.max_tokens is not None and request.max_tokens > limits.max_tokens:
        raise InvalidRequest(
            f"max_tokens: {request.max_tokens} is over the limit {limits.max_tokens} (HFBUS_MAX_TOKENS)"
        )


class _Relay:
    """The stream's sink: each read's delta is recorded, and sent as a chunk, inside the socket callback."""

    __slots__ = ("_ctx", "_transcript")

    def __init__(self, ctx: Context, transcript: _Transcript) -> None:
        self._ctx = ctx
        self._transcript = transcript

    def push(self, delta: ChatDelta) -> bool:
        self._transcript.add(delta)  # first: a cancel while the chunk goes out still counts what was read
        if delta.has_output:
            return self._ctx.chunk_nowait(delta.content, delta.reasoning or None, delta.tool_calls)
        return True

    async def drain(self) -> None:
        await self._ctx.drain()


class _Transcript:
    """The answer assembled from the deltas, for the final result."""

    __slots__ = ("_calls", "finish_reason", "reasoning", "text", "tokens", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.tokens = 0
        self._calls: dict[int, JsonObject] = {}

    def usage_so_far(self) -> TokenUsage:
        """The provider's count once it sent one; before that, the tokens streamed (prompt tokens unknown)."""
        if self.usage is not None:
            return self.usage
        return TokenUsage(completion_tokens=self.tokens, total_tokens=self.tokens)

    def add(self, delta: ChatDelta) -> None:
        self.tokens += delta.tokens
        if delta.content:
            self.text.append(delta.content)
        if delta.reasoning:
            self.reasoning.append(delta.reasoning)
        if delta.tool_calls:
            for fragment in delta.tool_calls:
                self._merge_call(fragment)
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if delta.usage:
            self.usage = delta.usage

    def _merge_call(self, fragment: JsonObject) -> None:
        # OpenAI streams a call as index-keyed fragments: the first names it, the rest append arguments.
        index = fragment.get("index", 0)
        call = self._calls.setdefault(
            index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if fragment.get("id"):
            call["id"] = fragment["id"]
        if fragment.get("type"):
            call["type"] = fragment["type"]
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] = function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]

    def tool_calls(self) -> list[JsonObject] | None:
        return [self._calls[i] for i in sorted(self._calls)] or None
