"""wavespeed: every task is a job in a `{code, message, data}` envelope, polled at `data.urls.get` (§8.3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderJobFailed, ProviderReplyInvalid
from ..base.media import fetch_output, media_ref
from ..base.types import HttpReply, Step, TaskInput


class _Urls(msgspec.Struct):
    get: str | None = None


class _Job(msgspec.Struct):
    id: str = ""
    status: str = ""
    outputs: list[str] | None = None
    urls: _Urls | None = None
    error: str | None = None


class _Envelope(msgspec.Struct):
    code: int | None = None
    message: str | None = None
    data: _Job | None = None


class WavespeedTask(TaskAdapter):
    provider = "wavespeed"
    wire = "task polling"

    def _route(self, inp: TaskInput) -> str:
        return f"/api/v3/{inp.provider_model}"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        prompt = require(inp.prompt, "prompt", self.provider, self.task)
        return with_options({"prompt": prompt, **hf_params(inp)}, inp)

    def _parse_submit(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        return self._parse_job(inp, reply, base_url)

    def _parse_poll(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        return self._parse_job(inp, reply, base_url)

    def _parse_job(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        envelope = self._decode(reply, _Envelope)
        job = envelope.data
        if envelope.code not in (None, 200) or job is None:
            raise ProviderJobFailed(f"wavespeed {self.task}: {envelope.message or 'reply has no data'}")
        match job.status:
            case "completed":
                if not job.outputs:
                    raise ProviderReplyInvalid(f"wavespeed job {job.id} completed without outputs")
                return fetch_output(self.task, job.outputs[0])
            case "failed":
                raise ProviderJobFailed(f"wavespeed job {job.id} failed: {job.error or 'no message'}")
            case "created" | "processing":
                if job.urls is None or not job.urls.get:
                    raise ProviderReplyInvalid(f"wavespeed job {job.id} has no data.urls.get")
                # Only the path is kept: the poll goes through the router, not to api.wavespeed.ai.
                url = self._url(base_url, urlsplit(job.urls.get).path)
                return self._follow(inp, url, "queued" if job.status == "created" else "running")
            case _:
                raise ProviderReplyInvalid(f"wavespeed job {job.id} has unknown status {job.status!r}")


class WavespeedTextToImage(WavespeedTask):
    task = "text-to-image"


class WavespeedTextToVideo(WavespeedTask):
    task = "text-to-video"


class _WavespeedImageInputTask(WavespeedTask):
    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        # Python's form: the image as a data URL under "image" (JS sends plain base64 under image and images).
        payload: dict[str, Any] = {"image": media_ref(inp)}
        if inp.prompt:
            payload["prompt"] = inp.prompt
        return with_options({**payload, **hf_params(inp)}, inp)


class WavespeedImageToImage(_WavespeedImageInputTask):
    task = "image-to-image"


class WavespeedImageToVideo(_WavespeedImageInputTask):
    task = "image-to-video"
