"""Media in and out: an input given by URL, inline bytes or object-store reference; a stored output's ref."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from schemas.common import Contract, RequestBase, Result

MediaType = Annotated[str, msgspec.Meta(pattern=r"^[a-z]+/[A-Za-z0-9.+\-]+$", max_length=100)]


class MediaInput(Contract, frozen=True, kw_only=True):
    """Exactly one of: `url` (https), `data` (base64 in JSON, raw bytes in msgpack) with `content_type`,
    or `bucket` + `name` (an object in the JetStream object store)."""

    url: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    data: bytes | None = None
    content_type: MediaType | None = None
    bucket: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        given = [self.url is not None, self.data is not None, self.bucket is not None or self.name is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of `url`, `data` (with `content_type`) or `bucket` + `name`")
        if self.url is not None and not self.url.startswith("https://"):
            raise ValueError("`url` must be an https URL")
        if self.data is not None and not self.data:
            raise ValueError("`data` is empty")
        if (self.bucket is None) != (self.name is None):
            raise ValueError("`bucket` and `name` go together")


class MediaRef(Contract, frozen=True, kw_only=True):
    """A stored output: fetch it from the object store (`bucket`, `name`); `data` is inline when small."""

    bucket: str | None
    """None when the media is only inline (core mode without JetStream, small files)."""
    name: str
    size: int
    sha256: str
    """Hex SHA-256 of the bytes, to check a download."""
    content_type: str
    data: bytes | None = None


class MediaUsage(Contract, frozen=True, kw_only=True):
    """What a media task billed: counts of what was produced or consumed."""

    images: int = 0
    videos: int = 0
    seconds: float = 0.0
    """Seconds of video or audio produced (or of audio transcribed)."""
    characters: int = 0
    inputs: int = 0
    """Texts embedded (vectorize)."""


class TaskRequest(RequestBase, frozen=True, kw_only=True):
    """Fields every non-chat request carries besides `id`, `model` and `reply_to`."""

    provider: str | None = None
    """Pin one provider (e.g. `fal-ai`); default: the first live provider of the model's mapping."""
    options: dict[str, Any] | None = None
    """Provider-specific parameters, passed through untouched."""


class MediaResult(Result, tag="result", frozen=True, kw_only=True):
    """The final output of text2pic, pic2pic, text2vid, pic2vid and text2sound."""

    media: list[MediaRef]
    usage: MediaUsage = msgspec.field(default_factory=MediaUsage)
