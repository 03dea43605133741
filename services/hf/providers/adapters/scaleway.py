"""scaleway: OpenAI-compatible embeddings at `/v1/embeddings` (huggingface_hub 2.4.0 and the JS client alike)."""

from __future__ import annotations

from ..base.openai_style import OpenAIEmbeddings
from ..base.types import TaskInput


class ScalewayFeatureExtraction(OpenAIEmbeddings):
    provider = "scaleway"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/embeddings"
