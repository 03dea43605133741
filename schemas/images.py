"""`ai.text2pic` and `ai.pic2pic`: generated and edited images, stored in the object store."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.common import Chunk, Error, Progress
from schemas.media import MediaInput, MediaResult, TaskRequest

Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
Side = Annotated[int, msgspec.Meta(ge=64, le=4096)]
Steps = Annotated[int, msgspec.Meta(ge=1, le=200)]
Guidance = Annotated[float, msgspec.Meta(ge=0, le=50)]


class Text2PicRequest(TaskRequest, frozen=True, kw_only=True):
    prompt: Prompt
    negative_prompt: str | None = None
    width: Side | None = None
    height: Side | None = None
    steps: Steps | None = None
    guidance_scale: Guidance | None = None
    seed: int | None = None


class Pic2PicRequest(TaskRequest, frozen=True, kw_only=True):
    image: MediaInput
    prompt: Prompt
    negative_prompt: str | None = None
    steps: Steps | None = None
    guidance_scale: Guidance | None = None
    seed: int | None = None


ImageOutput = Chunk | Progress | MediaResult | Error
