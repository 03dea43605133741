"""`ai.text2vid` and `ai.pic2vid`: queued video jobs; progress outputs while they run."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.common import Chunk, Error, Progress
from schemas.images import Prompt
from schemas.media import MediaInput, MediaResult, TaskRequest

Frames = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class Text2VidRequest(TaskRequest, frozen=True, kw_only=True):
    prompt: Prompt
    negative_prompt: str | None = None
    num_frames: Frames | None = None
    seed: int | None = None


class Pic2VidRequest(TaskRequest, frozen=True, kw_only=True):
    image: MediaInput
    prompt: Prompt | None = None
    num_frames: Frames | None = None
    seed: int | None = None


VideoOutput = Chunk | Progress | MediaResult | Error
