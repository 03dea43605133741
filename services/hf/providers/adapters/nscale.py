"""nscale: OpenAI-style image generation with base64 output."""

from __future__ import annotations

from typing import Any

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderReplyInvalid
from ..base.media import b64_output
from ..base.types import HttpReply, Step, TaskInput


class _B64Image(msgspec.Struct):
    b64_json: str


class _Images(msgspec.Struct):
    data: list[_B64Image]


class NscaleTextToImage(TaskAdapter):
    provider = "nscale"
    task = "text-to-image"
    wire = "b64 JSON"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/images/generations"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        params = hf_params(inp)
        if "width" in params and "height" in params:
            params["size"] = f"{params.pop('width')}x{params.pop('height')}"
        # Python drops the step count (and cfg_scale, which we never set): the API has no such field.
        params.pop("num_inference_steps", None)
        prompt = require(inp.prompt, "prompt", self.provider, self.task)
        fields = with_options({"prompt": prompt, **params}, inp)
        return {**fields, "response_format": "b64_json", "model": inp.provider_model}

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Images)
        if not found.data:
            raise ProviderReplyInvalid("nscale text-to-image reply has no image")
        return b64_output(self.task, found.data[0].b64_json)
