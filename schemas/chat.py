"""`ai.chat` and `ai.pic2text`: an OpenAI-shaped chat request and its streamed outputs."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.common import Chunk, Contract, Error, JsonObject, Progress, RequestBase, Result, TokenUsage

Role = Literal["system", "developer", "user", "assistant", "tool"]


class Part(Contract, tag_field="type", omit_defaults=True, frozen=True, kw_only=True):
    """Base of a content part of a multimodal message."""


class TextPart(Part, tag="text", frozen=True, kw_only=True):
    text: str


class ImageURL(Contract, omit_defaults=True, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(min_length=1)]
    """An https URL or a `data:image/...;base64,...` URL, forwarded untouched."""
    detail: str | None = None


class ImagePart(Part, tag="image_url", frozen=True, kw_only=True):
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class ChatMessage(Contract, omit_defaults=True, frozen=True, kw_only=True):
    """One OpenAI chat message; `content` is text or a list of text and image parts."""

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[JsonObject] | None = None
    tool_call_id: str | None = None


class ChatRequest(RequestBase, frozen=True, kw_only=True):
    """A chat completion request (also the `pic2text` request: the same shape with image parts)."""

    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1)]
    stream: bool = True
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[JsonObject] | None = None
    tool_choice: str | JsonObject | None = None
    response_format: JsonObject | None = None


class ChatResult(Result, tag="result", frozen=True, kw_only=True):
    """The whole answer: sent after the last chunk, or alone when `stream` is false."""

    text: str
    finish_reason: str | None = None
    usage: TokenUsage = msgspec.field(default_factory=TokenUsage)
    reasoning: str | None = None
    tool_calls: list[JsonObject] | None = None
    """Tool calls assembled from the streamed fragments (OpenAI `message.tool_calls` shape)."""


ChatOutput = Chunk | Progress | ChatResult | Error
"""What a subscriber to a chat request's reply subject decodes."""
