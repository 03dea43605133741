"""The seams a handler sees: what it may ask the upstream for and how it sends outputs.

Handlers import neither nats nor aiohttp; the runtime and the HF client implement these protocols.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from schemas import ChatRequest, Result, Tag, TokenUsage
from schemas.common import JsonObject
from schemas.media import MediaInput, MediaRef
from services.catalog import Resolved
from services.hf.providers import TaskInput
from services.hf.tasks import OnProgress, TaskOutcome

R = TypeVar("R", bound=Result)


@dataclass(slots=True)
class ChatDelta:
    """Everything one read from the upstream socket carried, folded into one piece."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[JsonObject] | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    tokens: int = 0
    """Upstream events that carried output: one per generated token, as providers stream them."""

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
    router_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the upstream said about a finished stream besides its deltas."""

    provider: str | None
    router_request_id: str | None = None


OnDelta = Callable[[ChatDelta], Awaitable[None]]


class ChatUpstream(Protocol):
    """The chat half of the HF client."""

    async def stream_chat(self, request: ChatRequest, model: str, on_delta: OnDelta) -> StreamInfo:
        """Stream a completion, calling `on_delta` per socket read; raises a `ServiceError` leaf on failure."""
        ...

    async def complete_chat(self, request: ChatRequest, model: str) -> ChatAnswer:
        """One non-streamed completion; raises a `ServiceError` leaf on failure."""
        ...


class Upstream(ChatUpstream, Protocol):
    """The HF client as handlers see it."""

    async def run_task(self, template: TaskInput, pinned: str | None, on_progress: OnProgress) -> TaskOutcome:
        """Run a non-chat task on the model's providers (falling back while one is unavailable)."""
        ...


MediaKind = Literal["image", "audio"]


@dataclass(frozen=True, slots=True)
class LoadedMedia:
    """An input's bytes, their checked media type, and the https URL it came from when there was one."""

    data: bytes
    media_type: str
    url: str | None = None


class MediaIO(Protocol):
    """Media inputs read and outputs stored (the JetStream object store)."""

    async def load(self, media: MediaInput, *, field: str, kind: MediaKind) -> LoadedMedia:
        """The input's bytes, checked to be `kind`; raises `InvalidRequest` / `TooLarge` naming `field`."""
        ...

    async def save(self, data: bytes, media_type: str, *, name: str) -> MediaRef:
        """Store an output (`name` without extension) and describe it."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds a request must respect before any upstream call (from settings)."""

    max_messages: int
    max_tokens: int


class Context(Protocol):
    """One request's view of the runtime."""

    @property
    def limits(self) -> Limits: ...

    @property
    def tag(self) -> Tag: ...

    @property
    def request_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def upstream(self) -> Upstream: ...

    @property
    def media(self) -> MediaIO: ...

    def resolve(self, model: str | None) -> Resolved:
        """The request's `model` (or the tag's default) made concrete through the catalog."""
        ...

    async def progress(self, status: str, queue_position: int | None = None) -> None:
        """Publish a `progress` output (throttled: only changes, or a heartbeat every few seconds)."""
        ...

    async def chunk(self, delta: str, reasoning: str | None = None, tool_calls: list[JsonObject] | None = None) -> None:
        """Publish one `chunk` output."""
        ...

    async def result(self, result_type: type[R], **fields: Any) -> None:
        """Publish the final `result`; the runtime fills in id, seq and attempt."""
        ...

    def track_usage(self, so_far: Callable[[], TokenUsage]) -> None:
        """Where the usage so far can be read: an error that ends the request early reports it, priced."""
        ...
