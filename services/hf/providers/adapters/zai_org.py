"""zai-org: text-to-image through Z.ai's async images API, polled at `/api/paas/v4/async-result/<id>`.

Both clients send the same submit; they differ on the first poll. huggingface_hub 2.4.0 (the newer release,
built 2026-10-29; the JS client 4.13.30 is from 2026-09-17) polls at once and then every 5 s, and reads the
image straight from a submit reply that is already SUCCESS; the JS client waits 5 s before every poll. hfbus
follows huggingface_hub.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderJobFailed, ProviderReplyInvalid
from ..base.media import fetch_output
from ..base.types import HttpReply, Step, TaskInput


class _Image(msgspec.Struct):
    url: str | None = None


class _Task(msgspec.Struct):
    id: str | None = None
    task_status: str | None = None
    image_result: list[_Image] | None = None


class ZaiTextToImage(TaskAdapter):
    provider = "zai-org"
    task = "text-to-image"
    wire = "async task polling"
    poll_interval_s = 5.0

    def _route(self, inp: TaskInput) -> str:
        return "/api/paas/v4/async/images/generations"

    def _headers(self, inp: TaskInput) -> dict[str, str]:
        # Both clients add these to every Z.ai call, polls included.
        return {**super()._headers(inp), "Accept-Language": "en-US,en", "x-source-channel": "hugging_face"}

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        params = hf_params(inp)
        width, height = params.pop("width", None), params.pop("height", None)
        payload: dict[str, Any] = {
            "model": inp.provider_model,
            "prompt": require(inp.prompt, "prompt", self.provider, self.task),
        }
        if width is not None and height is not None:
            payload["size"] = f"{width}x{height}"
        return with_options({**payload, **params}, inp)

    def _parse_submit(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        job = self._job(reply)
        if job.task_status == "PROCESSING":
            poll = self._follow(inp, self._url(base_url, f"/api/paas/v4/async-result/{job.id}"), "running")
            return replace(poll, interval_s=0.0)  # the first poll goes at once (huggingface_hub)
        return self._image(job)

    def _parse_poll(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        assert reply.call is not None  # purpose "poll" comes from the call
        job = self._job(reply)
        if job.task_status == "SUCCESS":
            return self._image(job)
        return self._follow(inp, reply.call.url, "running")

    def _job(self, reply: HttpReply) -> _Task:
        job = self._decode(reply, _Task)
        if not job.id:
            raise ProviderReplyInvalid("zai-org text-to-image reply has no task id")
        if job.task_status == "FAIL":
            raise ProviderJobFailed(f"zai-org text-to-image task {job.id} failed")
        return job

    def _image(self, job: _Task) -> Step:
        if not job.image_result or not job.image_result[0].url:
            raise ProviderReplyInvalid(f"zai-org text-to-image task {job.id} has no image_result[0].url")
        return fetch_output(self.task, job.image_result[0].url)
