"""Values passed between the HTTP executor and the adapters: calls out, replies in, steps back.

Everything here is a frozen, slotted dataclass so a step can be matched with `match` and logged safely;
no value ever holds the HF token (the executor adds `Authorization` to authenticated calls itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

import msgspec

from schemas.codec import JsonText

Task = Literal[
    "automatic-speech-recognition",
    "feature-extraction",
    "image-to-image",
    "image-to-video",
    "text-to-image",
    "text-to-speech",
    "text-to-video",
]
"""The HF task names of the non-chat tasks, as the Hub provider mapping spells them."""

TASKS: tuple[Task, ...] = get_args(Task)

Provider = Literal[
    "deepinfra",
    "fal-ai",
    "hf-inference",
    "novita",
    "nscale",
    "replicate",
    "scaleway",
    "together",
    "wavespeed",
    "zai-org",
]
"""Router provider names, as they appear in `/<provider>/...` routes and in the Hub mapping."""

PROVIDER_NAMES: tuple[Provider, ...] = get_args(Provider)

Purpose = Literal["submit", "poll", "result", "download"]
"""Which reply of a flow a call asks for; `parse` reads the reply according to its call's purpose."""


@dataclass(slots=True, frozen=True)
class HttpCall:
    """One HTTP request to send exactly as described.

    `url` is absolute. Send `json` (when not None) JSON-encoded, or `data` as the raw body; never both.
    Add `Authorization: Bearer <token>` only when `authenticated`: downloads from provider CDNs are
    unauthenticated so the HF token never leaves the router.
    """

    method: str
    url: str
    headers: dict[str, str]
    # Bodies stay out of repr: a logged call must not dump an inline image or audio file.
    json: Any = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    authenticated: bool = True
    purpose: Purpose = "submit"


@dataclass(slots=True, frozen=True, kw_only=True)
class TaskInput:
    """The provider-neutral input of one request, built by the handler from the request and the mapping."""

    task: Task
    provider_model: str
    """The provider's own model id from the Hub mapping; the HF id for hf-inference."""
    hf_model: str
    prompt: str | None = None
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    num_frames: int | None = None
    seed: int | None = None
    guidance_scale: float | None = None
    texts: list[str] | None = None
    """feature-extraction inputs; one vector comes back per text, in order."""
    normalize: bool | None = None
    truncate: bool | None = None
    media: bytes | None = None
    """The image or audio input inline; `media_url` is used instead when set."""
    media_type: str | None = None
    media_url: str | None = None
    language: str | None = None
    voice: str | None = None
    text: str | None = None
    """text-to-speech input."""
    options: dict[str, Any] = field(default_factory=dict)
    """Provider-specific parameters, merged untouched over the adapter's own parameters."""


@dataclass(slots=True, frozen=True)
class HttpReply:
    """A 2xx reply, handed to `TaskAdapter.parse`; the executor turns non-2xx into errors itself.

    `call` is the call this reply answers. None means the submit call that `prepare` built, which is
    enough for one-shot flows; for every later call (poll, result, download) the executor must pass it.
    """

    status: int
    headers: dict[str, str]
    """Lower-case header names."""
    body: bytes = field(repr=False)
    call: HttpCall | None = None

    @property
    def purpose(self) -> Purpose:
        return "submit" if self.call is None else self.call.purpose


@dataclass(slots=True, frozen=True)
class Download:
    """Send `call` (an unauthenticated GET of the provider's media URL) and feed its reply to `parse`."""

    call: HttpCall


@dataclass(slots=True, frozen=True)
class Media:
    """Final: the generated image, video or audio."""

    data: bytes = field(repr=False)
    content_type: str


class JsonVector(JsonText):
    """One embedding as the provider's JSON array text, checked to be a flat array of numbers.

    It reaches a JSON answer byte for byte (see `JsonText`), so the floats a caller decodes are exactly the
    provider's.
    """

    __slots__ = ()

    @property
    def dims(self) -> int:
        commas = self.text.count(b",")
        return commas + 1 if commas or self.text[1:-1].strip() else 0


Vector: TypeAlias = list[float] | JsonVector


def dims_of(vector: Vector) -> int:
    return vector.dims if isinstance(vector, JsonVector) else len(vector)


def floats_of(vector: Vector) -> list[float]:
    """The numbers themselves, decoded when they were passed through as text."""
    return _floats.decode(vector.text) if isinstance(vector, JsonVector) else vector


_raw_items = msgspec.json.Decoder(list[msgspec.Raw])
_floats = msgspec.json.Decoder(list[float])
_NOT_IN_NUMBERS = (b"{", b'"', b"t", b"f", b"n")
"""What valid JSON holds somewhere when it is more than arrays and numbers: objects, strings, true/false/null."""


def json_vectors(body: bytes) -> list[JsonVector] | None:
    """The vectors of a `[[number, …], …]` reply without decoding a float; None for any other shape.

    The decoder checks the JSON; what is left is to find nothing but arrays and numbers in it, and each item
    to be one array with no array inside (byte searches, about 1 µs for 1,024 numbers).
    """
    try:
        items = _raw_items.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if any(c in body for c in _NOT_IN_NUMBERS):
        return None
    vectors: list[JsonVector] = []
    for item in items:
        text = bytes(item)
        if text[:1] != b"[" or text.find(b"[", 1) >= 0:
            return None
        vectors.append(JsonVector(text))
    return vectors


@dataclass(slots=True, frozen=True)
class Vectors:
    """Final: one embedding per input text, in input order."""

    vectors: Sequence[Vector]


@dataclass(slots=True, frozen=True)
class Transcript:
    """Final: the transcription, with `(start_s, end_s, text)` segments when the provider gave timestamps."""

    text: str
    segments: list[tuple[float, float, str]] = field(default_factory=list)


JobStatus = Literal["queued", "running", "completed"]
"""Provider job states folded into three, for progress events."""


@dataclass(slots=True, frozen=True)
class Pending:
    """Not done: wait `interval_s`, send `call`, feed its reply to `parse`.

    `status == "completed"` (with `interval_s == 0`) means the job finished and `call` fetches its result.
    """

    call: HttpCall
    status: JobStatus
    queue_position: int | None = None
    interval_s: float = 0.0


Step: TypeAlias = Download | Media | Vectors | Transcript | Pending
"""What `parse` returns: `Pending` and `Download` continue the flow, the others end it."""

FINAL_STEPS = (Media, Vectors, Transcript)
