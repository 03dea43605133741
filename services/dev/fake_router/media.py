"""Shared plumbing of the media routes, plus the Hub model API and the fake CDN.

Every router and Hub route goes through `guarded`: the chat route's token check, then the next queued `Fault`
(polls take `poll_faults` first), then the route, whose validation failures are `Rejected` answers in that
provider's error shape. One-shot providers live in `oneshot.py`, job flows (fal, WaveSpeed, Together video) in
`jobs.py`; generated files in `files.py`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import math
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
from aiohttp import web

from . import files, hub
from .faults import (
    Fault,
    ServerStopping,
    abort,
    auth_error,
    error_event_response,
    fault_for_model,
    json_response,
    pause,
    status_response,
)

Route = Callable[[web.Request], Awaitable[web.Response]]
Invalid = Callable[[str], web.Response]
"""Builds a provider's 4xx answer from a message naming the bad field."""

FAILURE = "The model crashed while generating (simulated failure)"
"""The error message of a job failed by `job_fail_next`."""
TRANSCRIPT_TEXT = "This is a simulated transcript from the hfbus offline router."
OUTPUT_EXTENSIONS: dict[str, files.Extension] = {
    "text-to-image": "png",
    "image-to-image": "png",
    "text-to-video": "mp4",
    "image-to-video": "mp4",
    "text-to-speech": "wav",
}
EMBEDDING_DIMS = {
    "intfloat/multilingual-e5-large": 1024,
    "BAAI/bge-base-en-v1.5": 768,
    "BAAI/bge-m3": 1024,
    "bge-multilingual-gemma2": 3584,
}
"""Vector sizes by the provider's model id."""
DEFAULT_EMBEDDING_DIMS = 384

Phase = Literal["queued", "running", "done"]


@dataclass
class Job:
    """A queued job: its state is counted in polls, not time, so tests are deterministic."""

    id: str
    provider: str
    task: str
    model: str
    key: str
    """`files.media_key` of the inputs; names the output file."""
    polls_needed: int
    """Polls answered "not done" before the job completes (`FakeRouter.job_polls` at submit)."""
    fails: bool
    polls: int = 0
    cancelled: bool = False

    def phase(self) -> tuple[Phase, int | None]:
        """The state the last poll saw, and the queue position while queued (it falls by one per poll)."""
        if self.cancelled or self.polls > self.polls_needed:
            return "done", None
        if self.polls == self.polls_needed and self.polls > 0:
            return "running", None
        return "queued", max(self.polls_needed - 1 - self.polls, 0)

    def poll(self) -> tuple[Phase, int | None]:
        """Count one status poll and return the state it sees."""
        self.polls += 1
        return self.phase()


class MediaState(Protocol):
    """What the media routes read and change on the router that owns them."""

    token: str | None
    url: str
    models: dict[str, hub.HubModel]
    faults: deque[Fault]
    poll_faults: deque[Fault]
    cdn_faults: deque[Fault]
    jobs: dict[str, Job]
    cancelled_jobs: list[str]
    job_polls: int
    job_fail_next: bool
    replicate_ready: bool
    shutting_down: bool


class Rejected(Exception):
    """Raised inside a route to answer with `response`, a 4xx in the provider's own error shape."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def guarded(state: MediaState, route: Route, *, polls: bool = True, trigger: str | None = None) -> Route:
    """`route` behind the token check and the fault queues; every answer gets an `x-request-id`.

    With `polls`, GETs (status, result and job polls) take `poll_faults` before `faults`. `trigger` names the
    match_info key whose `fake/...` value asks for a fault when none is queued, as chat model names do.
    """

    async def handle(request: web.Request) -> web.Response:
        headers = {"x-request-id": str(uuid.uuid4())}
        denied = auth_error(request, state.token)
        if denied is not None:
            denied.headers.update(headers)
            return denied
        fault = None
        if polls and request.method == "GET" and state.poll_faults:
            fault = state.poll_faults.popleft()
        elif state.faults:
            fault = state.faults.popleft()
        elif trigger is not None:
            fault = fault_for_model(request.match_info.get(trigger, ""))
        if fault is not None:
            early = await play(request, fault, state, headers)
            if early is not None:
                return early
        try:
            response = await route(request)
        except Rejected as exc:
            response = exc.response
        response.headers.update(headers)
        return response

    return handle


async def play(request: web.Request, fault: Fault, state: MediaState, headers: dict[str, str]) -> web.Response | None:
    """Act out `fault` on a one-shot request; None when the request should then be answered normally."""
    if fault.kind == "status":
        return status_response(fault, request.match_info.get("model", request.path), headers)
    if fault.kind == "error_event":
        return error_event_response(fault, headers)
    if fault.kind == "drop":
        abort(request)
        return web.Response()
    try:
        await pause(request, fault.seconds, lambda: state.shutting_down)
    except ConnectionResetError:
        return web.Response()
    except ServerStopping:
        abort(request)
        return web.Response()
    return None


# --- request and reply helpers shared by every provider -----------------------------------------------------


async def json_object(request: web.Request, invalid: Invalid) -> dict[str, Any]:
    """The body as a JSON object, or a `Rejected` in the provider's shape."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Rejected(invalid("body is not valid JSON")) from None
    if not isinstance(data, dict):
        raise Rejected(invalid("body must be a JSON object"))
    return data


def text_field(body: dict[str, Any], key: str, invalid: Invalid) -> str:
    """A required non-empty string field."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Rejected(invalid(f"`{key}` is required and must be a non-empty string"))
    return value


def media_field(value: object, key: str, invalid: Invalid, accept: Callable[[str], bool] = lambda _: True) -> str:
    """A required media reference: an http(s) URL, or a base64 data URL whose media type `accept`s."""
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    if not isinstance(value, str) or not value.startswith("data:"):
        raise Rejected(invalid(f"`{key}` must be an https URL or a data URL"))
    header, _, payload = value.partition(",")
    media_type = header[5:].removesuffix(";base64")
    if not header.endswith(";base64") or not accept(media_type):
        raise Rejected(invalid(f"`{key}`: unsupported data URL type {media_type!r}"))
    decoded_b64(payload, key, invalid)
    return value


def decoded_b64(value: object, key: str, invalid: Invalid) -> bytes:
    """Non-empty base64 content of a field."""
    try:
        data = base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise Rejected(invalid(f"`{key}` must be non-empty base64"))
    return data


def is_image(media_type: str) -> bool:
    return media_type.startswith("image/")


def mapped(state: MediaState, provider: str, provider_id: str, not_found: Invalid) -> hub.ProviderMapping:
    """The mapping entry for a provider's model id; the router answers 404 for an id no mapping names."""
    found = hub.find_mapping(state.models, provider, provider_id)
    if found is None:
        raise Rejected(not_found(f"Model {provider_id} does not exist"))
    return found[1]


def media_url(state: MediaState, request: web.Request, task: str, key: str) -> str:
    """The CDN URL of a task's output, on this server (`FakeRouter.url`, else the request's own origin)."""
    base = state.url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/cdn/{files.file_name(key, OUTPUT_EXTENSIONS[task])}"


def output_file(task: str, key: str) -> tuple[bytes, str]:
    """The bytes and media type a task produces for `key`."""
    ext = OUTPUT_EXTENSIONS[task]
    return files.RENDERERS[ext](key), files.CONTENT_TYPES[ext]


def transcript() -> dict[str, Any]:
    """An ASR reply: `text` and whisper-style `chunks` with `[start, end]` timestamps."""
    words = TRANSCRIPT_TEXT.split()
    half = len(words) // 2
    chunks = [
        {"text": " ".join(words[:half]), "timestamp": [0.0, 0.25]},
        {"text": " " + " ".join(words[half:]), "timestamp": [0.25, 0.5]},
    ]
    return {"text": TRANSCRIPT_TEXT, "chunks": chunks}


def embedding(text: str, dims: int, *, normalize: bool = True) -> list[float]:
    """A deterministic vector for `text`: unit length unless `normalize` is False."""
    return list(_embedding(text, dims, normalize))


@functools.lru_cache(maxsize=4096)
def _embedding(text: str, dims: int, normalize: bool) -> tuple[float, ...]:
    # Remembered: drawing 1,024 numbers costs this process about 0.2 ms per text, a cost a real upstream never
    # puts on the caller's machine, and it would tilt the vectorize bench towards whatever makes fewer texts.
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in vector))
    return tuple(x / norm for x in vector) if normalize else tuple(vector)


async def embed_latency(state: MediaState) -> None:
    """The router's fixed cost of one feature-extraction call (`FakeRouter.embed_latency_s`), once per call."""
    delay: float = getattr(state, "embed_latency_s", 0.0)
    if delay > 0:
        await asyncio.sleep(delay)


def texts_field(body: dict[str, Any], key: str, invalid: Invalid) -> str | list[str]:
    """`inputs` / `input` of an embeddings call: one string or a non-empty list of strings."""
    value = body.get(key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    raise Rejected(invalid(f"`{key}` must be a string or a non-empty list of strings"))


def openai_error(status: int) -> Invalid:
    """An OpenAI-style error, as Together, nscale and Novita answer."""
    return lambda message: json_response(status, {"error": {"message": message, "type": "invalid_request_error"}})


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def prompt_key(task: str, body: dict[str, Any], invalid: Invalid, image_key: str | None = None) -> str:
    """The output key of a generation body: the prompt, plus the input image for image-input tasks."""
    if task in ("text-to-image", "text-to-video"):
        return files.media_key(text_field(body, "prompt", invalid))
    if task in ("image-to-image", "image-to-video") and image_key is not None:
        image = media_field(body.get(image_key), image_key, invalid, is_image)
        prompt = body.get("prompt")
        return files.media_key(prompt if isinstance(prompt, str) else "", image)
    raise Rejected(invalid(f"this endpoint does not run {task}"))


# --- the Hub and the CDN -----------------------------------------------------------------------------------------


async def cdn_file(request: web.Request, state: MediaState) -> web.Response:
    """`GET /cdn/<key>.<ext>`: public files; a request carrying any Authorization is refused (403)."""
    if "Authorization" in request.headers:
        # A real CDN would ignore it; refusing proves the consumer never sends the HF token off the router.
        return web.Response(status=403, text="Authorization header not accepted by the CDN")
    if state.cdn_faults:
        early = await play(request, state.cdn_faults.popleft(), state, {})
        if early is not None:
            return early
    found = files.render(request.match_info["name"])
    if found is None:
        return web.Response(status=404, text="Not Found")
    data, content_type = found
    return web.Response(body=data, content_type=content_type, headers={"Cache-Control": "public, max-age=3600"})


def bind(state: MediaState, route: Callable[[web.Request, MediaState], Awaitable[web.Response]]) -> Route:
    """`route` with the router state filled in."""

    async def handle(request: web.Request) -> web.Response:
        return await route(request, state)

    return handle


def add_routes(app: web.Application, state: MediaState) -> None:
    """Register the Hub model and whoami APIs and the CDN on `app`."""

    async def model_info(request: web.Request) -> web.Response:
        return hub.model_info(request, state.models)

    repo = "{repo:[^/]+(?:/[^/]+)?}"
    app.router.add_get(f"/api/models/{repo}", guarded(state, model_info, polls=False, trigger="repo"))
    app.router.add_get("/cdn/{name}", bind(state, cdn_file))

    async def whoami(request: web.Request) -> web.Response:
        return hub.whoami(request)

    # Behind the token check and the fault queue: a test queues a 401 or 402 to see the console report it.
    app.router.add_get("/api/whoami-v2", guarded(state, whoami, polls=False))
