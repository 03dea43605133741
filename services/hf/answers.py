"""What the upstream answers, as the HF client hands it on: chat deltas, whole completions, finished tasks.

Plain data, importing nothing that does I/O: the handler seams describe the client with these types, and the
client builds them, so neither side imports the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from schemas import TokenUsage
from schemas.common import JsonObject
from services.hf.providers import Media, Transcript, Vectors


class ChatDelta(msgspec.Struct, gc=False):
    """Everything one read from the upstream socket carried, folded into one piece.

    One per socket read, never in a cycle: a struct the collector does not track (`gc=False`), so a paced stream's
    thousands of deltas a second do not set off collections.
    """

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


class DeltaSink(Protocol):
    """Where a stream's deltas go synchronously, from inside the upstream socket's read callback.

    `push` runs once per socket read that completed events, in order, and must not block: it returns False to ask
    for a pause (its own buffer is full), and reading then stops until the stream's task has awaited `drain`.
    """

    def push(self, delta: ChatDelta) -> bool: ...

    async def drain(self) -> None: ...


OnProgress = Callable[[str, int | None], Awaitable[None]]
"""Called with a job's status (queued, running, completed) and its queue position, when the provider tells."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A finished task: what it produced and the provider that produced it."""

    output: Media | Vectors | Transcript
    provider: str
    router_request_id: str | None = None
    """The router's `x-request-id` of the call that started the job."""
