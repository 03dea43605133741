"""The seams a handler sees: what it may ask the upstream for and how it sends outputs.

Handlers import neither nats nor aiohttp; the consumer's `Outputs`, the HF client and the media store implement
these protocols structurally and import nothing from here, so the seams can name the upstream's data types
(`services.hf.answers`, `services.media_types`) without a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from schemas import ChatRequest, Result, Tag, TokenUsage
from schemas.common import JsonObject
from schemas.media import MediaInput, MediaRef
from services.catalog import Resolved
from services.hf.answers import ChatAnswer, ChatDelta, DeltaSink, OnDelta, OnProgress, StreamInfo, TaskOutcome
from services.hf.providers import TaskInput
from services.media_types import LoadedMedia, MediaKind

__all__ = [
    "ChatAnswer",
    "ChatDelta",
    "ChatUpstream",
    "Context",
    "DeltaSink",
    "Limits",
    "LoadedMedia",
    "MediaIO",
    "MediaKind",
    "OnDelta",
    "OnProgress",
    "R",
    "StreamInfo",
    "TaskInput",
    "TaskOutcome",
    "Upstream",
]

R = TypeVar("R", bound=Result)


class ChatUpstream(Protocol):
    """The chat half of the HF client."""

    async def stream_chat(self, request: ChatRequest, model: str, on_delta: OnDelta) -> StreamInfo:
        """Stream a completion, calling `on_delta` per socket read; raises a `ServiceError` leaf on failure."""
        ...

    async def stream_chat_to(self, request: ChatRequest, model: str, sink: DeltaSink) -> StreamInfo:
        """`stream_chat` with a sink fed synchronously from the socket's read callback: no task step per read."""
        ...

    async def complete_chat(self, request: ChatRequest, model: str) -> ChatAnswer:
        """One non-streamed completion; raises a `ServiceError` leaf on failure."""
        ...


class Upstream(ChatUpstream, Protocol):
    """The HF client as handlers see it."""

    async def run_task(self, template: TaskInput, pinned: str | None, on_progress: OnProgress) -> TaskOutcome:
        """Run a non-chat task on the model's providers (falling back while one is unavailable)."""
        ...


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

    def chunk_nowait(
        self, delta: str, reasoning: str | None = None, tool_calls: list[JsonObject] | None = None
    ) -> bool:
        """Queue one `chunk` output without awaiting (from a `DeltaSink`); False asks the caller to `drain()`."""
        ...

    async def drain(self) -> None:
        """Wait until the queued outputs are within the connection's buffer limit again."""
        ...

    async def result(self, result_type: type[R], **fields: Any) -> None:
        """Publish the final `result`; the runtime fills in id, seq and attempt."""
        ...

    def track_usage(self, so_far: Callable[[], TokenUsage]) -> None:
        """Where the usage so far can be read: an error that ends the request early reports it, priced."""
        ...
