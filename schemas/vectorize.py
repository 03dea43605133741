"""`ai.vectorize`: embeddings of one text or a list of texts."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.common import Chunk, Error, Progress, Result
from schemas.media import MediaUsage, TaskRequest

Text = Annotated[str, msgspec.Meta(min_length=1)]


class VectorizeRequest(TaskRequest, frozen=True, kw_only=True):
    input: Text | Annotated[list[Text], msgspec.Meta(min_length=1, max_length=2048)]
    normalize: bool | None = None
    truncate: bool | None = None


class VectorizeResult(Result, tag="result", frozen=True, kw_only=True):
    vectors: list[list[float]]
    """One vector per input text, in input order (one for a single string)."""
    dims: int
    usage: MediaUsage = msgspec.field(default_factory=MediaUsage)


VectorizeOutput = Chunk | Progress | VectorizeResult | Error
