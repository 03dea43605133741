"""OpenAI-compatible provider routes: deepinfra (`/v1/openai/...`), scaleway and together speech/transcriptions.

Embeddings, speech (the audio bytes back), transcriptions (a multipart upload: `file`, then plain fields) and
deepinfra's image generation, each checking that `model` is a provider id the Hub maps to that task.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import time
from email.message import EmailMessage
from typing import Any

from aiohttp import web

from . import files
from .faults import json_response
from .media import (
    DEFAULT_EMBEDDING_DIMS,
    EMBEDDING_DIMS,
    MediaState,
    Rejected,
    bind,
    embed_latency,
    embedding,
    guarded,
    json_object,
    mapped,
    media_url,
    openai_error,
    output_file,
    text_field,
    texts_field,
    transcript,
)

_PREFIXES = {"deepinfra": "/deepinfra/v1/openai", "scaleway": "/scaleway/v1", "together": "/together/v1"}
# Together's transcriptions also take a public URL as the `file` field; deepinfra wants the upload.
_URL_FILES = frozenset({"together"})


def _model(body: dict[str, Any], state: MediaState, provider: str, task: str) -> str:
    model = text_field(body, "model", openai_error(400))
    if mapped(state, provider, model, openai_error(404)).task != task:
        raise Rejected(openai_error(400)(f"{model} does not run {task}"))
    return model


async def embeddings(request: web.Request, state: MediaState, provider: str) -> web.Response:
    """`POST <prefix>/embeddings`: `data[].embedding`, unit length, in input order."""
    body = await json_object(request, openai_error(400))
    model = _model(body, state, provider, "feature-extraction")
    inputs = texts_field(body, "input", openai_error(400))
    await embed_latency(state)
    texts = [inputs] if isinstance(inputs, str) else inputs
    dims = EMBEDDING_DIMS.get(model, DEFAULT_EMBEDDING_DIMS)
    data = [{"object": "embedding", "index": i, "embedding": embedding(text, dims)} for i, text in enumerate(texts)]
    tokens = sum(len(t.split()) for t in texts)
    return json_response(200, {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens}})


async def speech(request: web.Request, state: MediaState, provider: str) -> web.Response:
    """`POST <prefix>/audio/speech`: the WAV bytes. Together, as the real one, refuses a missing voice."""
    body = await json_object(request, openai_error(400))
    _model(body, state, provider, "text-to-speech")
    text = text_field(body, "input", openai_error(400))
    if provider == "together" and not isinstance(body.get("voice"), str):
        raise Rejected(openai_error(400)("`voice` is required for this model, e.g. af_alloy"))
    data, content_type = output_file("text-to-speech", files.media_key(text))
    return web.Response(body=data, content_type=content_type)


def _form(request: web.Request, raw: bytes) -> dict[str, EmailMessage]:
    """The parts of a multipart/form-data body by field name, or a 400 when it is not one."""
    if request.content_type != "multipart/form-data":
        raise Rejected(openai_error(400)("send the audio as multipart/form-data with a `file` field"))
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    parts: dict[str, EmailMessage] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str) and isinstance(part, EmailMessage):
                parts[name] = part
    return parts


def _value(part: EmailMessage | None) -> bytes:
    payload = part.get_payload(decode=True) if part is not None else None
    return payload if isinstance(payload, bytes) else b""


async def transcriptions(request: web.Request, state: MediaState, provider: str) -> web.Response:
    """`POST <prefix>/audio/transcriptions`: `{text, segments}` as OpenAI's verbose_json has them."""
    parts = _form(request, await request.read())
    model = _value(parts.get("model")).decode()
    if not model:
        raise Rejected(openai_error(400)("`model` is required"))
    _model({"model": model}, state, provider, "automatic-speech-recognition")
    file = parts.get("file")
    audio = _value(file)
    is_url = file is not None and file.get_filename() is None and audio.startswith((b"https://", b"http://"))
    if not audio or (file is not None and file.get_filename() is None and not (is_url and provider in _URL_FILES)):
        raise Rejected(openai_error(400)("`file` must be an uploaded audio file"))
    reply = transcript()
    segments = [
        {"id": i, "start": chunk["timestamp"][0], "end": chunk["timestamp"][1], "text": chunk["text"]}
        for i, chunk in enumerate(reply["chunks"])
    ]
    return json_response(200, {"task": "transcribe", "text": reply["text"], "segments": segments})


async def deepinfra_images(request: web.Request, state: MediaState) -> web.Response:
    """`POST /deepinfra/v1/openai/images/generations`: base64 or a URL, as `response_format` asks."""
    body = await json_object(request, openai_error(400))
    _model(body, state, "deepinfra", "text-to-image")
    key = files.media_key(text_field(body, "prompt", openai_error(400)))
    match body.get("response_format", "url"):
        case "b64_json":
            item = {"b64_json": base64.b64encode(output_file("text-to-image", key)[0]).decode("ascii")}
        case "url":
            item = {"url": media_url(state, request, "text-to-image", key)}
        case other:
            raise Rejected(openai_error(400)(f"`response_format` {other!r} is not one of b64_json, url"))
    return json_response(200, {"created": int(time.time()), "data": [item]})


def _for(provider: str, route: Any, state: MediaState) -> Any:
    async def handle(request: web.Request, state: MediaState) -> web.Response:
        response: web.Response = await route(request, state, provider)
        return response

    return guarded(state, bind(state, handle))


def add_routes(app: web.Application, state: MediaState) -> None:
    """Register the OpenAI-style provider routes on `app`."""
    for provider, prefix in _PREFIXES.items():
        app.router.add_post(f"{prefix}/embeddings", _for(provider, embeddings, state))
    for provider in ("deepinfra", "together"):
        prefix = _PREFIXES[provider]
        app.router.add_post(f"{prefix}/audio/speech", _for(provider, speech, state))
        app.router.add_post(f"{prefix}/audio/transcriptions", _for(provider, transcriptions, state))
    app.router.add_post("/deepinfra/v1/openai/images/generations", guarded(state, bind(state, deepinfra_images)))
