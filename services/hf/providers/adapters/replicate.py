"""replicate: predictions held open with `Prefer: wait`; nobody polls (reference §8.2)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..base.adapter import Chunk, TaskAdapter, hf_params, require, segments, with_options
from ..base.errors import ProviderJobFailed, ProviderReplyInvalid
from ..base.media import fetch_output, media_ref
from ..base.types import Download, HttpReply, Step, TaskInput, Transcript

_FAILED = frozenset({"failed", "canceled", "aborted"})


class _Prediction(msgspec.Struct):
    id: str = ""
    status: str = ""
    output: Any = None
    error: Any = None


def _first_url(output: Any) -> str | None:
    """The first string in a prediction output: a URL, a list of URLs, or a dict of them."""
    if isinstance(output, str):
        return output
    values = output.values() if isinstance(output, dict) else output if isinstance(output, list) else ()
    for value in values:
        url = _first_url(value)
        if url is not None:
            return url
    return None


class ReplicateTask(TaskAdapter):
    provider = "replicate"
    wire = "`Prefer: wait`"

    def _route(self, inp: TaskInput) -> str:
        # A pinned version (`owner/model:hash`) has no models route; the hash goes in the body instead.
        if ":" in inp.provider_model:
            return "/v1/predictions"
        return f"/v1/models/{inp.provider_model}/predictions"

    def _headers(self, inp: TaskInput) -> dict[str, str]:
        return {**super()._headers(inp), "Prefer": "wait"}

    def _input(self, inp: TaskInput) -> dict[str, Any]:
        """The prediction's `input` before options. Overridden per task."""
        return {"prompt": require(inp.prompt, "prompt", self.provider, self.task), **hf_params(inp)}

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        payload: dict[str, Any] = {"input": with_options(self._input(inp), inp)}
        if ":" in inp.provider_model:
            payload["version"] = inp.provider_model.split(":", 1)[1]
        return payload

    def _finished_output(self, reply: HttpReply) -> Any:
        prediction = self._decode(reply, _Prediction)
        if prediction.status in _FAILED or prediction.error:
            raise ProviderJobFailed(
                f"replicate prediction {prediction.id} {prediction.status or 'failed'}: {prediction.error}"
            )
        if prediction.output is None:
            raise ProviderReplyInvalid(
                f"replicate prediction {prediction.id} not finished after Prefer: wait (status {prediction.status!r})"
            )
        return prediction.output

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        url = _first_url(self._finished_output(reply))
        if url is None:
            raise ProviderReplyInvalid(f"replicate {self.task} output holds no URL")
        return fetch_output(self.task, url)


class ReplicateTextToImage(ReplicateTask):
    task = "text-to-image"


class ReplicateTextToVideo(ReplicateTask):
    task = "text-to-video"
    wire = "`Prefer: wait` (versioned ids)"


class ReplicateTextToSpeech(ReplicateTask):
    # Both clients build the text-to-image input and rename `prompt` to `text`; the output is the audio's URL.
    task = "text-to-speech"

    def _input(self, inp: TaskInput) -> dict[str, Any]:
        found: dict[str, Any] = {"text": require(inp.text, "text", self.provider, self.task)}
        if inp.voice is not None:
            found["voice"] = inp.voice
        return found


class ReplicateImageToImage(ReplicateTask):
    task = "image-to-image"

    def _input(self, inp: TaskInput) -> dict[str, Any]:
        image = media_ref(inp)
        # Models disagree on the name, so the same image goes under all four (reference §9.2).
        found: dict[str, Any] = {"image": image, "images": [image], "input_image": image, "input_images": [image]}
        if inp.prompt:
            found["prompt"] = inp.prompt
        return {**found, **hf_params(inp)}


class _WhisperOutput(msgspec.Struct):
    transcription: str | None = None
    translation: str | None = None
    segments: list[Chunk] | None = None
    txt_file: str | None = None


class ReplicateSpeechRecognition(ReplicateTask):
    task = "automatic-speech-recognition"

    def _input(self, inp: TaskInput) -> dict[str, Any]:
        found: dict[str, Any] = {"audio": media_ref(inp, default_type="audio/wav")}
        if inp.language:
            found["language"] = inp.language
        return found

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        output = self._finished_output(reply)
        if isinstance(output, list) and output:
            output = output[0]
        if isinstance(output, str):
            return Transcript(output.strip())
        try:
            found = msgspec.convert(output, _WhisperOutput)
        except msgspec.ValidationError as exc:
            raise ProviderReplyInvalid(f"replicate automatic-speech-recognition output: {exc}") from exc
        text = found.translation if found.translation is not None else found.transcription
        if text is not None:
            return Transcript(text.strip(), segments(found.segments))
        if found.txt_file is not None:
            step = fetch_output(self.task, found.txt_file)
            return step if isinstance(step, Download) else _transcript_file(step.data)
        raise ProviderReplyInvalid("replicate automatic-speech-recognition output has no text")

    def _parse_download(self, inp: TaskInput, reply: HttpReply) -> Step:
        return _transcript_file(reply.body)


def _transcript_file(data: bytes) -> Transcript:
    return Transcript(data.decode("utf-8", errors="replace").strip())
