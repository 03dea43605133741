"""Providers that answer in one call: hf-inference, Together images, nscale, Novita text-to-video, Replicate.

Replicate belongs here because the clients never poll it: `Prefer: wait` holds the call until the prediction is
done, and a prediction that is not (`replicate_ready = False`) comes back with `output: null` (reference §8.2).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from . import files, hub
from .faults import json_response
from .media import (
    DEFAULT_EMBEDDING_DIMS,
    EMBEDDING_DIMS,
    FAILURE,
    Invalid,
    MediaState,
    Rejected,
    bind,
    decoded_b64,
    embed_latency,
    embedding,
    guarded,
    is_image,
    json_object,
    mapped,
    media_field,
    media_url,
    now,
    openai_error,
    output_file,
    prompt_key,
    text_field,
    texts_field,
    transcript,
)

# --- hf-inference --------------------------------------------------------------------------------------------


def _hf_error(status: int) -> Invalid:
    return lambda message: json_response(status, {"error": message})


async def _hf_inputs(request: web.Request, key: str) -> tuple[bytes, dict[str, Any]]:
    """The media input of an hf-inference call: the raw body, or base64 `inputs` of a JSON body."""
    if request.content_type == "application/json":
        body = await json_object(request, _hf_error(400))
        return decoded_b64(body.get("inputs"), "inputs", _hf_error(400)), body
    data = await request.read()
    if not data:
        raise Rejected(_hf_error(400)(f"empty body: send the {key} bytes"))
    return data, {}


async def hf_inference_model(request: web.Request, state: MediaState) -> web.Response:
    """`POST /hf-inference/models/<hf id>`: the model's own pipeline; media replies are raw bytes."""
    model = request.match_info["model"]
    task = mapped(state, "hf-inference", model, _hf_error(404)).task
    if task in ("text-to-image", "text-to-speech"):
        body = await json_object(request, _hf_error(400))
        data, content_type = output_file(task, files.media_key(text_field(body, "inputs", _hf_error(400))))
        return web.Response(body=data, content_type=content_type)
    if task == "image-to-image":
        image, body = await _hf_inputs(request, "image")
        prompt = body.get("parameters", {}).get("prompt") if isinstance(body.get("parameters"), dict) else None
        data, content_type = output_file(task, files.media_key(prompt, image))
        return web.Response(body=data, content_type=content_type)
    if task == "automatic-speech-recognition":
        await _hf_inputs(request, "audio")
        return json_response(200, transcript())
    if task == "feature-extraction":
        # sentence-transformers repos default to sentence-similarity, which wants source_sentence + sentences.
        raise Rejected(_hf_error(400)("SentenceSimilarityPipeline: `inputs` must have source_sentence and sentences"))
    raise Rejected(_hf_error(400)(f"Model {model} has no {task} pipeline here"))


async def hf_inference_pipeline(request: web.Request, state: MediaState) -> web.Response:
    """`POST /hf-inference/models/<hf id>/pipeline/feature-extraction`: bare nested float arrays."""
    model, pipeline = request.match_info["model"], request.match_info["pipeline"]
    task = mapped(state, "hf-inference", model, _hf_error(404)).task
    if pipeline != "feature-extraction" or task != "feature-extraction":
        raise Rejected(_hf_error(400)(f"Model {model} does not support pipeline {pipeline}"))
    body = await json_object(request, _hf_error(400))
    inputs = texts_field(body, "inputs", _hf_error(400))
    await embed_latency(state)
    dims, normalize = EMBEDDING_DIMS.get(model, DEFAULT_EMBEDDING_DIMS), body.get("normalize") is not False
    if isinstance(inputs, str):
        return json_response(200, embedding(inputs, dims, normalize=normalize))
    return json_response(200, [embedding(text, dims, normalize=normalize) for text in inputs])


# --- together (images), nscale, novita -----------------------------------------------------------


async def together_images(request: web.Request, state: MediaState) -> web.Response:
    """`POST /together/v1/images/generations`: FLUX Kontext takes `image_url`, other models `reference_images`."""
    body = await json_object(request, openai_error(400))
    model = text_field(body, "model", openai_error(400))
    task = mapped(state, "together", model, openai_error(404)).task
    image: str | None = None
    if task == "image-to-image":
        lowered = model.lower()
        if "flux.1" in lowered and "kontext" in lowered:
            image = media_field(body.get("image_url"), "image_url", openai_error(400), is_image)
        else:
            refs = body.get("reference_images")
            first = refs[0] if isinstance(refs, list) and refs else None
            image = media_field(first, "reference_images[0]", openai_error(400), is_image)
    elif task != "text-to-image":
        raise Rejected(openai_error(400)(f"{model} is not an image model"))
    prompt = text_field(body, "prompt", openai_error(400)) if task == "text-to-image" else body.get("prompt")
    key = files.media_key(prompt if isinstance(prompt, str) else "", image)
    item: dict[str, Any] = {"index": 0, "type": "image"}
    match body.get("response_format", "url"):
        case "base64" | "b64_json":
            item["b64_json"] = base64.b64encode(output_file(task, key)[0]).decode("ascii")
        case "url":
            item["url"] = media_url(state, request, task, key)
        case other:
            raise Rejected(openai_error(400)(f"`response_format` {other!r} is not one of base64, url"))
    return json_response(200, {"id": uuid.uuid4().hex, "model": model, "object": "list", "data": [item]})


async def nscale_images(request: web.Request, state: MediaState) -> web.Response:
    """`POST /nscale/v1/images/generations`: base64 only; size as "WxH"."""
    body = await json_object(request, openai_error(400))
    model = text_field(body, "model", openai_error(400))
    mapped(state, "nscale", model, openai_error(404))
    prompt = text_field(body, "prompt", openai_error(400))
    if body.get("response_format") != "b64_json":
        raise Rejected(openai_error(400)("`response_format` must be b64_json"))
    size = body.get("size")
    if size is not None and (not isinstance(size, str) or not all(p.isdigit() for p in size.split("x", 1))):
        raise Rejected(openai_error(400)("`size` must look like 1024x1024"))
    data = base64.b64encode(output_file("text-to-image", files.media_key(prompt))[0]).decode("ascii")
    return json_response(200, {"created": int(time.time()), "data": [{"b64_json": data}]})


async def novita_video(request: web.Request, state: MediaState) -> web.Response:
    """`POST /novita/v3/hf/<id>`: synchronous text-to-video answering with `video.video_url`."""
    model = request.match_info["model"]
    mapped(state, "novita", model, openai_error(404))
    body = await json_object(request, openai_error(400))
    url = media_url(state, request, "text-to-video", files.media_key(text_field(body, "prompt", openai_error(400))))
    return json_response(200, {"video": {"video_url": url, "video_url_ttl": "3600", "video_type": "mp4"}})


# --- replicate ---------------------------------------------------------------------------------------------------


def _replicate_error(status: int) -> Invalid:
    def answer(message: str) -> web.Response:
        problem = {"title": "Invalid request" if status < 500 else "Server error", "detail": message, "status": status}
        return web.Response(status=status, body=orjson.dumps(problem), content_type="application/problem+json")

    return answer


def _replicate_version(state: MediaState, version: str) -> hub.ProviderMapping:
    for model in state.models.values():
        entry = model.providers.get("replicate")
        if (
            entry is not None
            and ":" in entry.provider_id
            and version in (entry.provider_id, entry.provider_id.split(":")[1])
        ):
            return entry
    raise Rejected(_replicate_error(422)(f"version {version} does not exist or you do not have access to it"))


async def replicate(request: web.Request, state: MediaState) -> web.Response:
    """`/replicate/v1/models/<o>/<m>/predictions` or `/replicate/v1/predictions` + `version`: 201 prediction."""
    body = await json_object(request, _replicate_error(400))
    owner, name = request.match_info.get("owner"), request.match_info.get("name")
    if owner is not None and name is not None:
        entry = mapped(state, "replicate", f"{owner}/{name}", _replicate_error(404))
    else:
        entry = _replicate_version(state, text_field(body, "version", _replicate_error(422)))
    inputs = body.get("input")
    if not isinstance(inputs, dict):
        raise Rejected(_replicate_error(422)("`input` is required and must be an object"))
    task = entry.task
    if task == "automatic-speech-recognition":
        media_field(inputs.get("audio"), "input.audio", _replicate_error(422))
        key = ""
    elif task == "text-to-speech":
        key = files.media_key(text_field(inputs, "text", _replicate_error(422)))
    else:
        key = prompt_key(
            task, inputs, _replicate_error(422), image_key="input_image" if "input_image" in inputs else "image"
        )
    model_name, _, version = entry.provider_id.partition(":")
    prediction_id = uuid.uuid4().hex[:26]
    api = f"https://api.replicate.com/v1/predictions/{prediction_id}"
    prediction: dict[str, Any] = {
        "id": prediction_id,
        "model": model_name,
        "version": version or "hidden",
        "input": inputs,
        "logs": "",
        "output": None,
        "error": None,
        "status": "starting",
        "created_at": now(),
        "urls": {
            "get": api,
            "cancel": f"{api}/cancel",
            "stream": f"{api}/stream",
            "web": f"https://replicate.com/p/{prediction_id}",
        },
    }
    fails, state.job_fail_next = state.job_fail_next, False
    if fails:
        prediction |= {"status": "failed", "error": FAILURE}
    elif state.replicate_ready and request.headers.get("Prefer", "").startswith("wait"):
        prediction |= {
            "status": "succeeded",
            "output": _replicate_output(request, state, task, key),
            "completed_at": now(),
        }
    return json_response(201, prediction)


def _replicate_output(request: web.Request, state: MediaState, task: str, key: str) -> Any:
    if task == "automatic-speech-recognition":
        reply = transcript()
        segments = [
            {"id": i, "start": chunk["timestamp"][0], "end": chunk["timestamp"][1], "text": chunk["text"]}
            for i, chunk in enumerate(reply["chunks"])
        ]
        return {
            "transcription": reply["text"],
            "segments": segments,
            "translation": None,
            "txt_file": None,
            "detected_language": "english",
        }
    url = media_url(state, request, task, key)
    # Image models answer a list of files, video models one file.
    return [url] if task == "text-to-image" else url


def add_routes(app: web.Application, state: MediaState) -> None:
    """Register the one-shot provider routes on `app`."""
    model = "{model:[^/]+/[^/]+}"
    app.router.add_post(f"/hf-inference/models/{model}", guarded(state, bind(state, hf_inference_model)))
    app.router.add_post(
        f"/hf-inference/models/{model}/pipeline/{{pipeline}}", guarded(state, bind(state, hf_inference_pipeline))
    )
    app.router.add_post("/together/v1/images/generations", guarded(state, bind(state, together_images)))
    app.router.add_post("/nscale/v1/images/generations", guarded(state, bind(state, nscale_images)))
    app.router.add_post("/novita/v3/hf/{model:.+}", guarded(state, bind(state, novita_video)))
    replicate_route = guarded(state, bind(state, replicate))
    app.router.add_post("/replicate/v1/models/{owner}/{name}/predictions", replicate_route)
    app.router.add_post("/replicate/v1/predictions", replicate_route)
