"""Shared pieces of the wire contract: tags, error codes, the output union's base types."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec


class Tag(StrEnum):
    """A task tag: one NATS subject, one consumer, one HF task."""

    CHAT = "chat"
    PIC2TEXT = "pic2text"
    VECTORIZE = "vectorize"
    TEXT2PIC = "text2pic"
    TEXT2VID = "text2vid"
    PIC2PIC = "pic2pic"
    PIC2VID = "pic2vid"
    SOUND2TEXT = "sound2text"
    TEXT2SOUND = "text2sound"


class ErrorCode(StrEnum):
    """Stable codes carried by every `error` output; subscribers branch on these, never on message text."""

    INVALID_REQUEST = "invalid_request"
    UNKNOWN_MODEL = "unknown_model"
    UNAUTHORIZED = "unauthorized"
    PAYMENT_REQUIRED = "payment_required"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_ERROR = "upstream_error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    TOO_LARGE = "too_large"
    INTERNAL = "internal"


REQUEST_ID_PATTERN = r"^[A-Za-z0-9_:=+\-]+$"
"""The characters a request id may have (at most 128): it becomes a NATS subject token (`ai.out.<tag>.<id>`)."""
REQUEST_ID_MAX = 128

RequestId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=REQUEST_ID_MAX,
        pattern=REQUEST_ID_PATTERN,
        description="Caller-chosen unique id (ULID/UUID); also the JetStream Nats-Msg-Id.",
    ),
]
"""Caller-chosen unique id; letters, digits and `_ : = + -` so it is a valid subject token."""

JsonObject = dict[str, Any]


class Contract(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every contract struct: immutable, keyword-only, unknown fields ignored."""


class RequestBase(Contract, frozen=True, kw_only=True):
    """Fields every request on every tag carries."""

    id: RequestId
    model: str | None = None
    """Catalog name or HF model id; chat also accepts a `:fastest` / `:cheapest` / `:<provider>` suffix."""
    reply_to: str | None = None
    """Subject for the outputs when the request was not sent as a core NATS request."""
    resumable: bool = False
    """Also keep the outputs on `<prefix>.out.<tag>.<id>` in the stream `HFBUS_OUT`, so a subscriber that was away
    reads what it missed, in order, then goes on live."""


class Output(Contract, tag_field="type", frozen=True, kw_only=True):
    """Base of the output union; `type` is the discriminator."""

    id: str
    seq: int
    """Rises by one per output of an attempt, starting at 0."""
    attempt: int = 1
    """1 unless a durable request was redelivered; subscribers reset their state when it rises."""


class Chunk(Output, tag="chunk", frozen=True, kw_only=True):
    """A piece of streamed text; several upstream tokens read together travel as one chunk."""

    delta: str = ""
    reasoning: str | None = None
    """Reasoning models' thinking text, when the provider streams it."""
    tool_calls: list[JsonObject] | None = None
    """OpenAI-style tool-call fragments, index-keyed, passed through as the provider sent them."""


class Progress(Output, tag="progress", frozen=True, kw_only=True):
    """A long job's state: queued, running, with its queue position and elapsed time."""

    status: str
    elapsed_s: float = 0.0
    queue_position: int | None = None
    message: str | None = None


class TokenUsage(Contract, frozen=True, kw_only=True):
    """Token counts as the upstream billed them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Result(Output, tag="result", frozen=True, kw_only=True):
    """The final success output; each tag extends it with its own fields."""

    model: str
    provider: str | None = None
    """The provider that actually served the request, when the router said so."""
    cost_usd: float | None = None
    """Computed from the model catalog; null when the price is unknown."""
    router_request_id: str | None = None
    """The router's `x-request-id` for the call that served it: what HuggingFace support asks for."""


class Error(Output, tag="error", frozen=True, kw_only=True):
    """The final failure output."""

    code: ErrorCode
    message: str
    retryable: bool = False
    status: int | None = None
    """The upstream HTTP status, when there was one."""
    usage: TokenUsage | None = None
    """Chat streams: what the request used before it ended (a cancel, a stall, a broken stream): the provider's
    own count when it had sent one, else one completion token per streamed token and a prompt count of 0 (the
    router reports prompt tokens only at the end); zeros when it ended before any token. Null for other tags
    and for non-streamed chats."""
    cost_usd: float | None = None
    """The catalog price of `usage` (so, without the prompt when its count was not reported); null when the
    price is unknown."""
