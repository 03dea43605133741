"""The seams a handler sees: what it may ask the upstream for and how it sends outputs.

Handlers import neither nats nor aiohttp; the runtime and the HF client implement these protocols.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from schemas import ChatRequest, Result, Tag, TokenUsage
from schemas.common import JsonObject

R = TypeVar("R", bound=Result)


@dataclass(slots=True)
class ChatDelta:
    """Everything one read from the upstream socket carried, folded into one piece."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[JsonObject] | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None

    @property
    def has_output(self) -> bool:
        """True when a subscriber would see something: text, thinking or a tool-call fragment."""
        return bool(self.content or self.reasoning or self.tool_calls)


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A whole non-streamed completion."""

    text: str
    finish_reason: str | None
    usage: TokenUsage
    provider: str | None
    reasoning: str | None = None
    tool_calls: list[JsonObject] | None = None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the upstream said about a finished stream besides its deltas."""

    provider: str | None


OnDelta = Callable[[ChatDelta], Awaitable[None]]


class ChatUpstream(Protocol):
    """The chat half of the HF client."""

    async def stream_chat(self, request: ChatRequest, model: str, on_delta: OnDelta) -> StreamInfo:
        """Stream a completion, calling `on_delta` per socket read; raises a `ServiceError` leaf on failure."""
        ...

    async def complete_chat(self, request: ChatRequest, model: str) -> ChatAnswer:
        """One non-streamed completion; raises a `ServiceError` leaf on failure."""
        ...


class Context(Protocol):
    """One request's view of the runtime."""

    @property
    def tag(self) -> Tag: ...

    @property
    def upstream(self) -> ChatUpstream: ...

    def default_model(self) -> str:
        """The model to use when the request names none."""
        ...

    async def chunk(self, delta: str, reasoning: str | None = None, tool_calls: list[JsonObject] | None = None) -> None:
        """Publish one `chunk` output."""
        ...

    async def result(self, result_type: type[R], **fields: Any) -> None:
        """Publish the final `result`; the runtime fills in id, seq and attempt."""
        ...
