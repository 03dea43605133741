"""novita: text-to-video through the synchronous `/v3/hf/<id>` route the Python client uses (reference §8.5), and
MiniMax H3 image-to-video as a queued job (JS client only).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderJobFailed, ProviderReplyInvalid, UnsupportedInput
from ..base.media import fetch_output, media_ref
from ..base.types import HttpReply, Step, TaskInput


class _Video(msgspec.Struct):
    video_url: str


class _Reply(msgspec.Struct):
    video: _Video | None = None


class NovitaTextToVideo(TaskAdapter):
    provider = "novita"
    task = "text-to-video"
    wire = "`/v3/hf/<id>`"

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


# MiniMax H3's fixed output choices (the JS client's NOVITA_MINIMAX_H3_* rules).
_MINIMAX_MODEL = "MiniMax-H3"
_MINIMAX_DROPPED = frozenset({"guidance_scale", "negative_prompt", "num_inference_steps", "seed"})


def minimax_duration(num_frames: int | None) -> int:
    """Seconds of video: 4 by default, else the frames at 24 fps, clamped to 4..15 (the JS client's rule)."""
    return 4 if num_frames is None else min(15, max(4, round(num_frames / 24)))


class _MinimaxContent(msgspec.Struct):
    url: str | None = None


class _MinimaxError(msgspec.Struct):
    message: str | None = None


class _MinimaxTask(msgspec.Struct):
    status: str
    content: _MinimaxContent | None = None
    error: _MinimaxError | None = None


class _MinimaxReply(msgspec.Struct):
    task: _MinimaxTask


class _MinimaxSubmitted(msgspec.Struct):
    task_id: str


class NovitaImageToVideo(TaskAdapter):
    """JS only (@huggingface/inference 4.13.30, `NovitaImageTextToVideoTask`): MiniMax H3 as a queued job.

    The Hub files the model under `image-text-to-video`, the JS client's name for image + prompt to video,
    which is what `pic2vid` asks for.
    """

    provider = "novita"
    task = "image-to-video"
    wire = "MiniMax H3 task polling (JS only)"
    also_serves = frozenset({"image-text-to-video"})
    poll_interval_s = 5.0

    def _route(self, inp: TaskInput) -> str:
        if inp.provider_model != _MINIMAX_MODEL:
            raise UnsupportedInput(
                "model", f"novita image-to-video runs only {_MINIMAX_MODEL}, not {inp.provider_model}"
            )
        return "/v3/minimax/v2/video_generation"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        prompt = inp.prompt or ""
        require(prompt.strip(), "prompt", self.provider, self.task)  # MiniMax H3 needs a prompt with words in it
        options = {k: v for k, v in inp.options.items() if k not in _MINIMAX_DROPPED}
        resolution = options.pop("resolution", "768P")  # no target size in pic2vid: the client's default
        duration = options.pop("duration", minimax_duration(inp.num_frames))
        options.pop("ratio", None)  # with an input image the ratio is always "adaptive"
        # The JS client sends the image as a data URL; an https URL is what MiniMax's own API also takes.
        image = {"type": "image_url", "image_url": {"url": media_ref(inp, "image/png")}, "role": "first_frame"}
        return {
            **options,
            "model": inp.provider_model,
            "content": [{"type": "text", "text": prompt}, image],
            "resolution": resolution,
            "duration": duration,
            "ratio": "adaptive",
        }

    def _parse_submit(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        task_id = self._decode(reply, _MinimaxSubmitted).task_id
        url = self._url(base_url, f"/v3/minimax/v2/query/video_generation/{quote(task_id, safe='')}")
        return replace(self._follow(inp, url, "queued"), interval_s=0.0)  # the JS client polls at once

    def _parse_poll(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        assert reply.call is not None  # purpose "poll" comes from the call
        task = self._decode(reply, _MinimaxReply).task
        match task.status:
            case "succeeded":
                if task.content is None or not task.content.url:
                    raise ProviderReplyInvalid("novita image-to-video task succeeded without content.url")
                return fetch_output(self.task, task.content.url)
            case "failed" | "cancelled":
                message = task.error.message if task.error is not None else None
                raise ProviderJobFailed(message or f"novita image-to-video task {task.status}")
            case _:
                return self._follow(inp, reply.call.url, "queued" if task.status == "queued" else "running")
