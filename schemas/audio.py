"""`ai.sound2text` (speech recognition) and `ai.text2sound` (speech synthesis)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.common import Chunk, Error, Progress, Result
from schemas.media import MediaInput, MediaResult, MediaUsage, TaskRequest


class Sound2TextRequest(TaskRequest, frozen=True, kw_only=True):
    audio: MediaInput
    language: Annotated[str, msgspec.Meta(min_length=2, max_length=16)] | None = None


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    start: float
    end: float
    text: str


class TranscriptResult(Result, tag="result", frozen=True, kw_only=True):
    text: str
    segments: list[Segment] = []
    usage: MediaUsage = msgspec.field(default_factory=MediaUsage)


class Text2SoundRequest(TaskRequest, frozen=True, kw_only=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    voice: str | None = None


Sound2TextOutput = Chunk | Progress | TranscriptResult | Error
Text2SoundOutput = Chunk | Progress | MediaResult | Error
