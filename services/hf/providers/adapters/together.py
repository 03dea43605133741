"""together: OpenAI-style images, embeddings, speech and transcriptions; `/v2/videos` jobs polled by id (§8.4)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..base.adapter import TaskAdapter, hf_params, require, with_options
from ..base.errors import ProviderJobFailed, ProviderReplyInvalid, UnsupportedInput
from ..base.media import b64_output, fetch_output, media_ref
from ..base.multipart import FilePart
from ..base.openai_style import OpenAIEmbeddings, OpenAISpeech, OpenAITranscription
from ..base.types import HttpReply, JobStatus, Step, TaskInput

# The client source caps Together's inline input_image at about 60 KB; past that, host the image (§9.3).
INLINE_IMAGE_LIMIT = 60 * 1024


def _together_params(inp: TaskInput) -> dict[str, Any]:
    params = hf_params(inp)
    if "num_inference_steps" in params:
        params["steps"] = params.pop("num_inference_steps")
    return params


class TogetherTask(TaskAdapter):
    provider = "together"


class TogetherFeatureExtraction(OpenAIEmbeddings):
    provider = "together"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/embeddings"


class TogetherTextToSpeech(OpenAISpeech):
    # huggingface_hub 2.4.0 (newer than JS 4.13.30) sends a voice only when given; the JS client defaults
    # Kokoro models to "af_alloy". Together refuses a missing voice with a clear error either way.
    provider = "together"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/audio/speech"


class TogetherSpeechRecognition(OpenAITranscription):
    """JS only (@huggingface/inference 4.13.30, `TogetherAutomaticSpeechRecognitionTask`)."""

    provider = "together"
    wire = "OpenAI transcriptions, multipart (JS only)"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/audio/transcriptions"

    def _file(self, inp: TaskInput) -> FilePart | str:
        # Together also takes a public https URL as the `file` field, which the JS client sends as is.
        return inp.media_url if inp.media_url is not None else super()._file(inp)


class _B64Image(msgspec.Struct):
    b64_json: str


class _Images(msgspec.Struct):
    data: list[_B64Image]


class _TogetherImageTask(TogetherTask):
    wire = "b64 JSON"

    def _route(self, inp: TaskInput) -> str:
        return "/v1/images/generations"

    def _image_fields(self, inp: TaskInput) -> dict[str, Any]:
        return {"prompt": require(inp.prompt, "prompt", self.provider, self.task)}

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        # response_format and model come last: the parse below depends on them, options must not change them.
        params = with_options({**self._image_fields(inp), **_together_params(inp)}, inp)
        return {**params, "response_format": "base64", "model": inp.provider_model}

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Images)
        if not found.data:
            raise ProviderReplyInvalid(f"together {self.task} reply has no image")
        return b64_output(self.task, found.data[0].b64_json)


class TogetherTextToImage(_TogetherImageTask):
    task = "text-to-image"


class TogetherImageToImage(_TogetherImageTask):
    task = "image-to-image"
    wire = "b64 JSON (kontext rule)"

    def _image_fields(self, inp: TaskInput) -> dict[str, Any]:
        image = media_ref(inp)
        model = inp.provider_model.lower()
        # FLUX.1 Kontext takes only image_url; every other model only reference_images (§9.2).
        if "flux.1" in model and "kontext" in model:
            return {"prompt": inp.prompt or "", "image_url": image}
        return {"prompt": inp.prompt or "", "reference_images": [image]}


class _VideoOutputs(msgspec.Struct):
    video_url: str | None = None


class _VideoJob(msgspec.Struct):
    id: str = ""
    status: str | None = None
    outputs: _VideoOutputs | None = None
    error: Any = None


class _TogetherVideoTask(TogetherTask):
    wire = "`/v2/videos` polling"
    poll_interval_s = 2.0

    def _route(self, inp: TaskInput) -> str:
        return "/v2/videos"

    def _parse_submit(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        return self._parse_job(inp, reply, base_url)

    def _parse_poll(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        return self._parse_job(inp, reply, base_url)

    def _parse_job(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        job = self._decode(reply, _VideoJob)
        # A missing status means still pending, like queued and in_progress.
        if job.status in (None, "queued", "in_progress"):
            if not job.id:
                raise ProviderReplyInvalid("together video job reply has no id")
            status: JobStatus = "running" if job.status == "in_progress" else "queued"
            return self._follow(inp, self._url(base_url, f"/v2/videos/{job.id}"), status)
        if job.status == "completed":
            if job.outputs is None or not job.outputs.video_url:
                raise ProviderReplyInvalid(f"together video job {job.id} completed without outputs.video_url")
            return fetch_output(self.task, job.outputs.video_url)
        error = job.error.get("message") if isinstance(job.error, dict) else job.error
        raise ProviderJobFailed(f"together video job {job.id} {job.status}: {error or 'no message'}")


class TogetherTextToVideo(_TogetherVideoTask):
    task = "text-to-video"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        prompt = require(inp.prompt, "prompt", self.provider, self.task)
        return {**with_options({"prompt": prompt, **_together_params(inp)}, inp), "model": inp.provider_model}


class TogetherImageToVideo(_TogetherVideoTask):
    task = "image-to-video"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        image = media_ref(inp, "image/png")  # huggingface_hub labels untyped bytes PNG for this route
        if inp.media_url is None and len(image) > INLINE_IMAGE_LIMIT:
            raise UnsupportedInput(
                "image", "together image-to-video takes inline images up to ~60 KB; pass an https url instead"
            )
        payload: dict[str, Any] = {"frame_images": [{"input_image": image, "frame": "first"}]}
        if inp.prompt:
            payload["prompt"] = inp.prompt
        return {**with_options({**payload, **_together_params(inp)}, inp), "model": inp.provider_model}
