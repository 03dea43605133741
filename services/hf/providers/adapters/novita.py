"""novita: text-to-video through the synchronous `/v3/hf/<id>` route the Python client uses (reference §8.5)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderReplyInvalid
from ..base.media import fetch_output
from ..base.types import HttpReply, Step, TaskInput


class _Video(msgspec.Struct):
    video_url: str


class _Reply(msgspec.Struct):
    video: _Video | None = None


class NovitaTextToVideo(TaskAdapter):
    provider = "novita"
    task = "text-to-video"

    def _route(self, inp: TaskInput) -> str:
        return f"/v3/hf/{inp.provider_model}"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        prompt = require(inp.prompt, "prompt", self.provider, self.task)
        return with_options({"prompt": prompt, **hf_params(inp)}, inp)

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Reply)
        if found.video is None:
            raise ProviderReplyInvalid("novita text-to-video reply has no video.video_url")
        return fetch_output(self.task, found.video.video_url)
