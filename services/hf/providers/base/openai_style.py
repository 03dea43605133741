"""OpenAI-compatible task families: embeddings, speech and transcriptions, under each provider's own prefix.

deepinfra (`/v1/openai/...`), scaleway and together (`/v1/...`) expose OpenAI's routes; bodies and replies are
OpenAI's, so one base per task family holds them and a provider adapter sets its route and what differs.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from .adapter import Chunk, TaskAdapter, require, segments, with_options
from .errors import ProviderReplyInvalid
from .media import bare_type, media_bytes, media_type_of
from .multipart import FilePart, audio_part, form_data
from .types import HttpReply, Media, Step, TaskInput, Transcript, Vectors


class _Embedding(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _Embeddings(msgspec.Struct):
    data: list[_Embedding]


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


class OpenAIEmbeddings(TaskAdapter):
    """`POST <prefix>/embeddings` with `{"input", "model"}`; `data[].embedding` back."""

    task = "feature-extraction"
    wire = "OpenAI embeddings"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        # normalize/truncate are TEI options the OpenAI-style APIs do not take (the JS client sends neither);
        # normalize is applied on parse. `model` last, so options cannot send another model.
        return {**with_options({"input": inp.texts or []}, inp), "model": inp.provider_model}

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Embeddings)
        vectors = [item.embedding for item in sorted(found.data, key=lambda item: item.index)]
        if len(vectors) != len(inp.texts or []):
            raise ProviderReplyInvalid(
                f"{self.provider} returned {len(vectors)} vectors for {len(inp.texts or [])} inputs"
            )
        return Vectors([unit(v) for v in vectors] if inp.normalize else vectors)


class OpenAISpeech(TaskAdapter):
    """`POST <prefix>/audio/speech` with `{"input", "voice"?, "model"}`; the audio bytes back."""

    task = "text-to-speech"
    wire = "OpenAI speech, audio bytes"

    def _payload(self, inp: TaskInput) -> dict[str, Any]:
        # Voices are model-specific: both clients send one only when the caller gives one.
        payload: dict[str, Any] = {"input": require(inp.text, "text", self.provider, self.task)}
        if inp.voice is not None:
            payload["voice"] = inp.voice
        return {**with_options(payload, inp), "model": inp.provider_model}

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        if bare_type(reply.headers.get("content-type")) == "application/json":
            # Both clients refuse a JSON answer here: it is an error body that came with a 2xx.
            raise ProviderReplyInvalid(f"{self.provider} text-to-speech answered JSON instead of audio")
        return Media(reply.body, media_type_of(self.task, reply.body, reply.headers.get("content-type")))


class _Transcription(msgspec.Struct):
    text: str
    segments: list[Chunk] | None = None


class OpenAITranscription(TaskAdapter):
    """`POST <prefix>/audio/transcriptions`, multipart: the audio as `file`, then `language`?, options, `model`."""

    task = "automatic-speech-recognition"
    wire = "OpenAI transcriptions, multipart"

    def _file(self, inp: TaskInput) -> FilePart | str:
        """The `file` field: the audio uploaded. Overridden where the provider also takes a URL."""
        return audio_part(media_bytes(inp), bare_type(inp.media_type))

    def _body(self, inp: TaskInput) -> tuple[bytes, str | None] | None:
        fields: dict[str, Any] = {"language": inp.language} if inp.language else {}
        # `model` last, as in both clients, so options cannot send another model.
        return form_data(self._file(inp), {**with_options(fields, inp), "model": inp.provider_model})

    def _parse_output(self, inp: TaskInput, reply: HttpReply) -> Step:
        found = self._decode(reply, _Transcription)
        return Transcript(found.text.strip(), segments(found.segments))
