"""The job flows: fal-ai (sync and queue), WaveSpeed tasks and Together videos.

A job advances one state per status poll (`FakeRouter.job_polls` polls say "not done", the next one says done),
so tests count requests instead of sleeping. `FakeRouter.job_fail_next` makes the next submitted job end in the
provider's own failed state.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from . import files
from .faults import json_response
from .media import (
    FAILURE,
    Invalid,
    Job,
    MediaState,
    Rejected,
    bind,
    guarded,
    json_object,
    mapped,
    media_field,
    media_url,
    now,
    openai_error,
    output_file,
    prompt_key,
    text_field,
    transcript,
)

_FAL_QUEUE = "https://queue.fal.run"
# fal's whisper decodes data URLs only under these labels (reference §9.4); it refuses audio/wav itself.
_FAL_AUDIO_TYPES = frozenset({"audio/mpeg", "audio/x-wav", "video/webm"})


def new_job(state: MediaState, provider: str, task: str, model: str, key: str) -> Job:
    """Register a job; it takes over `job_fail_next` and the current `job_polls`."""
    job = Job(str(uuid.uuid4()), provider, task, model, key, max(state.job_polls, 0), state.job_fail_next)
    state.job_fail_next = False
    state.jobs[job.id] = job
    return job


def job_by_id(state: MediaState, provider: str, job_id: str, not_found: Invalid) -> Job:
    """The job `job_id` of `provider`, or the provider's 404."""
    job = state.jobs.get(job_id)
    if job is None or job.provider != provider:
        raise Rejected(not_found(f"Request {job_id} not found"))
    return job


# --- fal-ai ------------------------------------------------------------------------------------------------------


def _fal_error(status: int) -> Invalid:
    if status == 422:
        return lambda message: json_response(
            422, {"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}
        )
    return lambda message: json_response(status, {"detail": message})


def _fal_key(task: str, body: dict[str, Any]) -> str:
    invalid = _fal_error(422)
    if task == "automatic-speech-recognition":
        media_field(body.get("audio_url"), "audio_url", invalid, lambda media_type: media_type in _FAL_AUDIO_TYPES)
        return ""
    if task == "text-to-speech":
        return files.media_key(text_field(body, "text" if "text" in body else "prompt", invalid))
    return prompt_key(task, body, invalid, image_key="image_url")


def _fal_output(request: web.Request, state: MediaState, task: str, key: str) -> dict[str, Any]:
    if task == "automatic-speech-recognition":
        return transcript()
    url = media_url(state, request, task, key)
    data, content_type = output_file(task, key)
    if task in ("text-to-image", "image-to-image"):
        image = {"url": url, "width": files.IMAGE_SIZE, "height": files.IMAGE_SIZE, "content_type": content_type}
        return {"images": [image], "seed": int(key[:8], 16), "has_nsfw_concepts": [False], "timings": {}}
    found = {"url": url, "content_type": content_type, "file_name": url.rsplit("/", 1)[-1], "file_size": len(data)}
    return {"audio": found} if task == "text-to-speech" else {"video": found, "seed": int(key[:8], 16)}


def _fal_urls(job: Job) -> dict[str, str]:
    # Status, result and cancel URLs name only owner/app, so they differ from a submit path such as fal-ai/flux/dev.
    app = "/".join(job.model.split("/")[:2])
    response_url = f"{_FAL_QUEUE}/{app}/requests/{job.id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }


async def fal(request: web.Request, state: MediaState) -> web.Response:
    """`/fal-ai/<path>`: a sync run or (with `?_subdomain=queue`) a queue submit, status, result or cancel."""
    path = request.match_info["path"]
    queued = request.query.get("_subdomain") == "queue"
    if request.method == "POST":
        task = mapped(state, "fal-ai", path, _fal_error(404)).task
        key = _fal_key(task, await json_object(request, _fal_error(422)))
        if not queued:
            return json_response(200, _fal_output(request, state, task, key))
        job = new_job(state, "fal-ai", task, path, key)
        return json_response(
            200, {"request_id": job.id, "status": "IN_QUEUE", **_fal_urls(job), "queue_position": job.phase()[1]}
        )
    app, found, rest = path.partition("/requests/")
    job_id, _, action = rest.partition("/")
    # Without the queue subdomain the router forwards to fal's sync host, which has no request routes.
    if not queued or not found:
        raise Rejected(_fal_error(404)(f"Path /{path} not found"))
    job = job_by_id(state, "fal-ai", job_id, _fal_error(404))
    if "/".join(job.model.split("/")[:2]) != app:
        raise Rejected(_fal_error(404)(f"Request {job_id} not found"))
    match request.method, action:
        case "GET", "status":
            return _fal_status(job)
        case "GET", "":
            return _fal_result(request, state, job)
        case "PUT", "cancel":
            return _fal_cancel(state, job)
    raise Rejected(_fal_error(405)(f"{request.method} /{path} is not allowed"))


def _fal_status(job: Job) -> web.Response:
    phase, position = job.poll()
    reply: dict[str, Any] = {"request_id": job.id, **_fal_urls(job), "logs": None}
    if phase == "queued":
        return json_response(202, reply | {"status": "IN_QUEUE", "queue_position": position})
    if phase == "running":
        return json_response(202, reply | {"status": "IN_PROGRESS"})
    reply |= {"status": "COMPLETED", "metrics": {"inference_time": 0.1}}
    if job.cancelled:
        reply |= {"error": "Request was cancelled", "error_type": "request_cancelled"}
    elif job.fails:
        reply |= {"error": FAILURE, "error_type": "runner_disconnected"}
    return json_response(200, reply)


def _fal_result(request: web.Request, state: MediaState, job: Job) -> web.Response:
    if job.phase()[0] != "done":
        return json_response(400, {"detail": "Request is still in progress"})
    if job.cancelled:
        return json_response(400, {"detail": "Request was cancelled"})
    if job.fails:
        return json_response(500, {"detail": FAILURE}, {"X-Fal-Error-Type": "runner_disconnected"})
    return json_response(200, _fal_output(request, state, job.task, job.key))


def _fal_cancel(state: MediaState, job: Job) -> web.Response:
    if job.phase()[0] == "done":
        return json_response(400, {"status": "ALREADY_COMPLETED"})
    job.cancelled = True
    state.cancelled_jobs.append(job.id)
    return json_response(202, {"status": "CANCELLATION_REQUESTED"})


# --- wavespeed -----------------------------------------------------------------------------------------------------


def _wavespeed_error(status: int) -> Invalid:
    return lambda message: json_response(status, {"code": status, "message": message, "data": None})


def _wavespeed_reply(request: web.Request, state: MediaState, job: Job, status: str) -> web.Response:
    outputs = [media_url(state, request, job.task, job.key)] if status == "completed" else []
    data = {
        "id": job.id,
        "model": job.model,
        "outputs": outputs,
        "urls": {"get": f"https://api.wavespeed.ai/api/v3/predictions/{job.id}/result"},
        "has_nsfw_contents": [],
        "status": status,
        "created_at": now(),
        "error": FAILURE if status == "failed" else "",
        "timings": {"inference": 0},
    }
    return json_response(200, {"code": 200, "message": "success", "data": data})


async def wavespeed_submit(request: web.Request, state: MediaState) -> web.Response:
    """`POST /wavespeed/api/v3/<id>`: a task in the `{code, message, data}` envelope, status `created`."""
    model = request.match_info["model"]
    task = mapped(state, "wavespeed", model, _wavespeed_error(404)).task
    key = prompt_key(task, await json_object(request, _wavespeed_error(400)), _wavespeed_error(400), image_key="image")
    return _wavespeed_reply(request, state, new_job(state, "wavespeed", task, model, key), "created")


async def wavespeed_result(request: web.Request, state: MediaState) -> web.Response:
    """`GET /wavespeed/api/v3/predictions/<id>/result`: created, processing, then completed or failed."""
    job = job_by_id(state, "wavespeed", request.match_info["id"], _wavespeed_error(404))
    phase = job.poll()[0]
    status = {"queued": "created", "running": "processing"}.get(phase) or ("failed" if job.fails else "completed")
    return _wavespeed_reply(request, state, job, status)


# --- together videos -------------------------------------------------------------------------------------------


def _together_video(request: web.Request, state: MediaState, job: Job, status: str) -> web.Response:
    reply: dict[str, Any] = {
        "id": job.id,
        "object": "video",
        "model": job.model,
        "status": status,
        "created_at": now(),
    }
    if status == "completed":
        reply["outputs"] = {"video_url": media_url(state, request, job.task, job.key), "cost": 0}
    elif status == "failed":
        reply["error"] = {"code": "generation_failed", "message": FAILURE}
    return json_response(200, reply)


async def together_video_submit(request: web.Request, state: MediaState) -> web.Response:
    """`POST /together/v2/videos`: a job, `queued`; image-to-video takes `frame_images[0].input_image`."""
    invalid = openai_error(400)
    body = await json_object(request, invalid)
    model = text_field(body, "model", invalid)
    task = mapped(state, "together", model, openai_error(404)).task
    if task not in ("text-to-video", "image-to-video"):
        raise Rejected(invalid(f"{model} is not a video model"))
    if task == "image-to-video":
        frames = body.get("frame_images")
        first = frames[0] if isinstance(frames, list) and frames and isinstance(frames[0], dict) else {}
        key = prompt_key(task, {"prompt": body.get("prompt"), **first}, invalid, image_key="input_image")
    else:
        key = prompt_key(task, body, invalid)
    return _together_video(request, state, new_job(state, "together", task, model, key), "queued")


async def together_video_status(request: web.Request, state: MediaState) -> web.Response:
    """`GET /together/v2/videos/<id>`: queued, in_progress, then completed or failed."""
    job = job_by_id(state, "together", request.match_info["id"], openai_error(404))
    phase = job.poll()[0]
    status = {"queued": "queued", "running": "in_progress"}.get(phase) or ("failed" if job.fails else "completed")
    return _together_video(request, state, job, status)


def add_routes(app: web.Application, state: MediaState) -> None:
    """Register the job-flow provider routes on `app`."""
    fal_route = guarded(state, bind(state, fal))
    for method in ("POST", "GET", "PUT"):
        app.router.add_route(method, "/fal-ai/{path:.+}", fal_route)
    app.router.add_get("/wavespeed/api/v3/predictions/{id}/result", guarded(state, bind(state, wavespeed_result)))
    app.router.add_post("/wavespeed/api/v3/{model:.+}", guarded(state, bind(state, wavespeed_submit)))
    app.router.add_post("/together/v2/videos", guarded(state, bind(state, together_video_submit)))
    app.router.add_get("/together/v2/videos/{id}", guarded(state, bind(state, together_video_status)))
