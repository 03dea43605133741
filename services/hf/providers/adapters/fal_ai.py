"""fal-ai: flat native JSON at `/fal-ai/<fal app id>`; long tasks go through fal's queue (reference §8.1)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ..base.adapter import Chunk, TaskAdapter, hf_params, require, segments, size_to, with_options
from ..base.errors import ProviderJobFailed, ProviderReplyInvalid, UnsupportedInput
from ..base.media import bare_type, data_url, fetch_output, media_bytes, media_ref
from ..base.types import HttpCall, HttpReply, JobStatus, Step, TaskInput, Transcript

_QUEUE = "?_subdomain=queue"


class _File(msgspec.Struct):
    url: str


class _Output(msgspec.Struct):
    images: list[_File] | None = None
    video: _File | None = None
    audio: _File | None = None
    detail: Any = None
    error: Any = None


class _Queued(msgspec.Struct):
    request_id: str
    response_url: str
    status: str = "IN_QUEUE"
    queue_position: int | None = None


class _Status(msgspec.Struct):
    status: str
    queue_position: int | None = None
    error: Any = None


def _job_status(status: str) -> JobStatus:
    # The clients only test for COMPLETED; IN_QUEUE and IN_PROGRESS are the documented others.
    return "queued" if status == "IN_QUEUE" else "running"


class FalTask(TaskAdapter):
    """Synchronous fal call: one POST, the output (or its CDN URL) in the reply."""

    provider = "fal-ai"
    output_key: ClassVar[Literal["images", "video", "audio"]] = "images"
    wire = "sync JSON + CDN"

    def _route(self, inp: TaskInput) -> str:
        # The path is fal's app id from the mapping, hence `/fal-ai/fal-ai/...`.
        return f"/{inp.provider_model}"

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Output)
        files = {"images": found.images[0] if found.images else None, "video": found.video, "audio": found.audio}
        file = files[self.output_key]
        if file is not None:
            return fetch_output(self.task, file.url)
        problem = found.error or found.detail
        if problem:
            raise ProviderJobFailed(f"fal-ai {self.task} failed: {problem}")
        raise ProviderReplyInvalid(f"fal-ai {self.task} result has no {self.output_key}")


class FalQueueTask(FalTask):
    """fal queue: submit, poll `<response_url path>/status`, fetch `<response_url path>`, download."""

    wire = "queue"

    def _route(self, inp: TaskInput) -> str:
        return f"/{inp.provider_model}{_QUEUE}"

    def _parse_submit(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        queued = self._decode(reply, _Queued)
        # The response_url path can differ from the submit path, so both clients derive the polls from it.
        path = urlsplit(queued.response_url).path
        url = self._url(base_url, f"{path}/status{_QUEUE}")
        return self._follow(inp, url, _job_status(queued.status), queue_position=queued.queue_position)

    def cancel(self, poll: HttpCall) -> HttpCall | None:
        """fal's `cancel_url` is the request path plus `/cancel`, taken with PUT (kept on the queue host)."""
        parts = urlsplit(poll.url)
        if not parts.path.endswith("/status"):
            return None
        path = parts.path.removesuffix("/status") + "/cancel"
        return HttpCall("PUT", urlunsplit(parts._replace(path=path)), dict(poll.headers), purpose="poll")

    def _parse_poll(self, inp: TaskInput, reply: HttpReply, base_url: str) -> Step:
        assert reply.call is not None  # purpose "poll" comes from the call
        status = self._decode(reply, _Status)
        if status.error:
            raise ProviderJobFailed(f"fal-ai {self.task} job failed: {status.error}")
        if status.status != "COMPLETED":
            return self._follow(inp, reply.call.url, _job_status(status.status), queue_position=status.queue_position)
        parts = urlsplit(reply.call.url)
        result_url = urlunsplit(parts._replace(path=parts.path.removesuffix("/status")))
        return self._follow(inp, result_url, "completed", purpose="result")


class FalTextToImage(FalTask):
    task = "text-to-image"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        params = size_to(hf_params(inp), "image_size")
        return with_options({"prompt": require(inp.prompt, "prompt", self.provider, self.task), **params}, inp)


class FalTextToVideo(FalQueueTask):
    task = "text-to-video"
    output_key = "video"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        prompt = require(inp.prompt, "prompt", self.provider, self.task)
        return with_options({"prompt": prompt, **hf_params(inp)}, inp)


class FalImageToImage(FalQueueTask):
    task = "image-to-image"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        image = media_ref(inp)
        # Apps disagree on the key; both clients send the single and the list form.
        payload: dict[str, Any] = {"image_url": image, "image_urls": [image]}
        if inp.prompt:
            payload["prompt"] = inp.prompt
        return with_options({**payload, **size_to(hf_params(inp), "image_size")}, inp)


class FalImageToVideo(FalQueueTask):
    task = "image-to-video"
    output_key = "video"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        payload: dict[str, Any] = {"image_url": media_ref(inp)}
        if inp.prompt:
            payload["prompt"] = inp.prompt
        return with_options({**payload, **hf_params(inp)}, inp)


class FalTextToSpeech(FalTask):
    # Synchronous, as huggingface_hub 2.4.0 calls it (the reference has no text-to-speech section).
    task = "text-to-speech"
    output_key = "audio"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": require(inp.text, "text", self.provider, self.task)}
        if inp.voice is not None:
            payload["voice"] = inp.voice
        return with_options(payload, inp)


# fal decodes a data URL only under labels it maps to a file extension (reference §9.4).
_AUDIO_LABELS = {
    "audio/mpeg": "audio/mpeg",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/x-wav",
    "audio/wav": "audio/x-wav",
    "audio/wave": "audio/x-wav",
    "audio/webm": "video/webm",
    "video/webm": "video/webm",
}


class _Transcript(msgspec.Struct):
    text: str | None = None
    output: str | None = None
    chunks: list[Chunk] | None = None
    segments: list[Chunk] | None = None


class FalSpeechRecognition(FalTask):
    task = "automatic-speech-recognition"
    wire = "sync, data-URL type rules"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        payload: dict[str, Any] = {"audio_url": self._audio_url(inp)}
        if inp.language:
            payload["language"] = inp.language
        return with_options(payload, inp)

    def _audio_url(self, inp: TaskInput) -> str:
        if inp.media_url is not None:
            return inp.media_url
        declared = bare_type(inp.media_type)
        # Python labels every inline audio audio/mpeg; keep that when the type is unknown.
        label = _AUDIO_LABELS.get(declared or "audio/mpeg")
        if label is None:
            raise UnsupportedInput(
                "audio",
                f"fal-ai cannot take inline {declared} audio; send audio/mpeg, audio/wav or audio/webm,"
                " or an https url",
            )
        return data_url(media_bytes(inp), label)

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Transcript)
        text = found.text if found.text is not None else found.output
        if text is None:
            raise ProviderReplyInvalid("fal-ai automatic-speech-recognition reply has no text")
        return Transcript(text.strip(), segments(found.chunks or found.segments))
