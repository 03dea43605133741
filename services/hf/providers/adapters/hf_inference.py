"""hf-inference: HF's own serverless pipelines; model ids are HF repo ids and most replies are raw bytes."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import msgspec

from ..base.adapter import Chunk, TaskAdapter, hf_params, require, segments, size_to, with_options
from ..base.errors import ProviderReplyInvalid, UnsupportedInput
from ..base.media import b64_output, bare_type, fetch_output, media_bytes, media_type_of
from ..base.types import HttpReply, Media, Step, TaskInput, Transcript, Vector, Vectors, json_vectors


class HfInferenceTask(TaskAdapter):
    provider = "hf-inference"

    def _route(self, inp: TaskInput) -> str:
        return f"/models/{inp.provider_model}"

    def _media_output(self, reply: HttpReply) -> Media:
        return Media(reply.body, media_type_of(self.task, reply.body, reply.headers.get("content-type")))


class HfInferenceFeatureExtraction(HfInferenceTask):
    task = "feature-extraction"
    wire = "`/pipeline/feature-extraction`"

    def _route(self, inp: TaskInput) -> str:
        # Without the pipeline suffix a sentence-transformers repo runs sentence-similarity (reference §6).
        return f"/models/{inp.provider_model}/pipeline/feature-extraction"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        # Options sit at the top level here, not under "parameters".
        payload: dict[str, Any] = {"inputs": inp.texts or []}
        if inp.normalize is not None:
            payload["normalize"] = inp.normalize
        if inp.truncate is not None:
            payload["truncate"] = inp.truncate
        return with_options(payload, inp)

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        if (passed := json_vectors(reply.body)) is not None:
            return self._checked(inp, passed)
        try:
            vectors = msgspec.json.decode(reply.body, type=list[list[float]])
        except msgspec.ValidationError:
            try:
                vectors = [msgspec.json.decode(reply.body, type=list[float])]
            except msgspec.DecodeError as exc:
                raise ProviderReplyInvalid(
                    "hf-inference feature-extraction reply is not one float vector per input"
                    " (token-level models return a matrix per input; use a sentence-embedding model)"
                ) from exc
        except msgspec.DecodeError as exc:
            raise ProviderReplyInvalid(f"hf-inference feature-extraction reply: {exc}") from exc
        return self._checked(inp, vectors)

    def _checked(self, inp: TaskInput, vectors: Sequence[Vector]) -> Vectors:
        if len(vectors) != len(inp.texts or []):
            raise ProviderReplyInvalid(
                f"hf-inference returned {len(vectors)} vectors for {len(inp.texts or [])} inputs"
            )
        return Vectors(vectors)


class _B64Item(msgspec.Struct):
    b64_json: str


class _ImageJson(msgspec.Struct):
    data: list[_B64Item] | None = None
    output: list[str] | None = None


class HfInferenceTextToImage(HfInferenceTask):
    task = "text-to-image"
    wire = "raw bytes"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        payload: dict[str, Any] = {"inputs": require(inp.prompt, "prompt", self.provider, self.task)}
        parameters = with_options(hf_params(inp), inp)
        if parameters:
            payload["parameters"] = parameters
        return payload

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        if bare_type(reply.headers.get("content-type")) != "application/json":
            return self._media_output(reply)
        # Some deployments answer in OpenAI image or URL-list form instead of bytes.
        found = self._decode(reply, _ImageJson)
        if found.data:
            return b64_output(self.task, found.data[0].b64_json)
        if found.output:
            return fetch_output(self.task, found.output[0])
        raise ProviderReplyInvalid("hf-inference text-to-image JSON reply has neither data nor output")


class _MediaInputTask(HfInferenceTask):
    """A media input: the raw bytes as the body, or JSON with base64 `inputs` once there are parameters."""

    def _parameters(self, inp: TaskInput) -> dict[str, Any]:
        return with_options({}, inp)

    def _body(self, inp: TaskInput) -> tuple[bytes, str | None] | None:
        if self._parameters(inp):
            return None
        return media_bytes(inp), bare_type(inp.media_type) or None

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        encoded = base64.b64encode(media_bytes(inp)).decode("ascii")
        return {"inputs": encoded, "parameters": self._parameters(inp)}


class HfInferenceImageToImage(_MediaInputTask):
    task = "image-to-image"
    wire = "raw bytes / base64 JSON"

    def _parameters(self, inp: TaskInput) -> dict[str, Any]:
        params = size_to(hf_params(inp), "target_size")
        if inp.prompt:
            params["prompt"] = inp.prompt
        return with_options(params, inp)

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        return self._media_output(reply)


class _AsrReply(msgspec.Struct):
    text: str
    chunks: list[Chunk] | None = None


class HfInferenceSpeechRecognition(_MediaInputTask):
    task = "automatic-speech-recognition"
    wire = "raw audio"

    def _parameters(self, inp: TaskInput) -> dict[str, Any]:
        # Not in the reference: parameters are pipeline kwargs, and whisper takes its language via generate_kwargs.
        params: dict[str, Any] = {"generate_kwargs": {"language": inp.language}} if inp.language else {}
        return with_options(params, inp)

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _AsrReply)
        return Transcript(found.text.strip(), segments(found.chunks))


class HfInferenceTextToSpeech(HfInferenceTask):
    task = "text-to-speech"
    wire = "raw bytes"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        if inp.voice is not None:
            raise UnsupportedInput("voice", "hf-inference text-to-speech has no voices; use a model with the voice")
        payload: dict[str, Any] = {"inputs": require(inp.text, "text", self.provider, self.task)}
        if inp.options:
            payload["parameters"] = dict(inp.options)
        return payload

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        return self._media_output(reply)
