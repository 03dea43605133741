"""deepinfra: OpenAI-compatible routes under `/v1/openai` for embeddings, speech, transcriptions and images.

Built from huggingface_hub 2.4.0 (`_providers/deepinfra.py`) and, for text-to-image which only the JS client
has, @huggingface/inference 4.13.30 (`src/providers/deepinfra.ts`). Where both have a pair they agree on the
wire, except that huggingface_hub also forwards normalize/truncate to embeddings (see `OpenAIEmbeddings`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderReplyInvalid
from ..base.media import b64_output, fetch_output
from ..base.openai_style import OpenAIEmbeddings, OpenAISpeech, OpenAITranscription
from ..base.types import HttpReply, Step, TaskInput


class DeepInfraFeatureExtraction(OpenAIEmbeddings):
    provider = "deepinfra"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/openai/embeddings"


class DeepInfraTextToSpeech(OpenAISpeech):
    provider = "deepinfra"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/openai/audio/speech"


class DeepInfraSpeechRecognition(OpenAITranscription):
    provider = "deepinfra"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/openai/audio/transcriptions"


class _Image(msgspec.Struct):
    b64_json: str | None = None
    url: str | None = None


class _Images(msgspec.Struct):
    data: list[_Image]


class DeepInfraTextToImage(TaskAdapter):
    """JS only: OpenAI's images route, asking for base64 (the JS client's default output)."""

    provider = "deepinfra"
    task = "text-to-image"
    wire = "OpenAI images, b64 JSON (JS only)"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/openai/images/generations"

    def _headers(self, inp: TaskInput) -> dict[str, str]:
        # The JS client sends no Accept; huggingface_hub's image-task Accept: image/png has no deepinfra helper.
        return {}

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        # The JS client passes the HF parameter names through as given; prompt, model and the reply format go
        # last so no option can change them.
        prompt = require(inp.prompt, "prompt", self.provider, self.task)
        return {
            **with_options(hf_params(inp), inp),
            "response_format": "b64_json",
            "prompt": prompt,
            "model": inp.provider_model,
        }

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Images)
        if not found.data:
            raise ProviderReplyInvalid("deepinfra text-to-image reply has no image")
        first = found.data[0]
        # The JS client reads a URL first, then base64.
        if first.url:
            return fetch_output(self.task, first.url)
        if first.b64_json:
            return b64_output(self.task, first.b64_json)
        raise ProviderReplyInvalid("deepinfra text-to-image reply has neither url nor b64_json")
