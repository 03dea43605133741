"""Jobs polled by task id: zai-org's async images and novita's MiniMax H3 image-to-video.

Like the other job flows (`jobs.py`), a job advances one state per poll (`FakeRouter.job_polls`) and
`FakeRouter.job_fail_next` makes the next one fail in the provider's own way.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import files
from .faults import json_response
from .jobs import job_by_id, new_job
from .media import (
    FAILURE,
    Invalid,
    Job,
    MediaState,
    Rejected,
    bind,
    guarded,
    is_image,
    json_object,
    mapped,
    media_field,
    media_url,
    text_field,
)


def _zai_error(status: int) -> Invalid:
    return lambda message: json_response(status, {"error": {"code": "1214", "message": message}})


def _zai_task(request: web.Request, state: MediaState, job: Job, status: str) -> web.Response:
    reply: dict[str, Any] = {"model": job.model, "id": job.id, "request_id": job.id[:8], "task_status": status}
    if status == "SUCCESS":
        reply["image_result"] = [{"url": media_url(state, request, job.task, job.key)}]
    return json_response(200, reply)


async def zai_submit(request: web.Request, state: MediaState) -> web.Response:
    """`POST /zai-org/api/paas/v4/async/images/generations`: a task, `PROCESSING`."""
    if request.headers.get("x-source-channel") != "hugging_face":
        raise Rejected(_zai_error(400)("x-source-channel: hugging_face is required on router calls"))
    body = await json_object(request, _zai_error(400))
    model = text_field(body, "model", _zai_error(400))
    task = mapped(state, "zai-org", model, _zai_error(404)).task
    size = body.get("size")
    if size is not None and (not isinstance(size, str) or not all(p.isdigit() for p in size.split("x", 1))):
        raise Rejected(_zai_error(400)("`size` must look like 1024x1024"))
    key = files.media_key(text_field(body, "prompt", _zai_error(400)))
    return _zai_task(request, state, new_job(state, "zai-org", task, model, key), "PROCESSING")


async def zai_result(request: web.Request, state: MediaState) -> web.Response:
    """`GET /zai-org/api/paas/v4/async-result/<id>`: PROCESSING, then SUCCESS with `image_result` or FAIL."""
    job = job_by_id(state, "zai-org", request.match_info["id"], _zai_error(404))
    done = job.poll()[0] == "done"
    return _zai_task(request, state, job, ("FAIL" if job.fails else "SUCCESS") if done else "PROCESSING")


def _minimax_error(status: int) -> Invalid:
    return lambda message: json_response(status, {"code": status, "reason": "INVALID_REQUEST", "message": message})


async def minimax_submit(request: web.Request, state: MediaState) -> web.Response:
    """`POST /novita/v3/minimax/v2/video_generation`: a text part and a first-frame image; `{task_id}` back."""
    invalid = _minimax_error(400)
    body = await json_object(request, invalid)
    model = text_field(body, "model", invalid)
    task = mapped(state, "novita", model, _minimax_error(404)).task
    content = body.get("content")
    parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
    texts = [p.get("text") for p in parts if p.get("type") == "text"]
    frames = [p.get("image_url") for p in parts if p.get("type") == "image_url" and p.get("role") == "first_frame"]
    if not texts or not isinstance(texts[0], str) or not texts[0].strip():
        raise Rejected(invalid("`content` needs a text part with the prompt"))
    url = frames[0].get("url") if frames and isinstance(frames[0], dict) else None
    image = media_field(url, "content[].image_url.url", invalid, is_image)
    if not isinstance(body.get("duration"), int) or body.get("resolution") not in ("768P", "2K"):
        raise Rejected(invalid("`duration` (seconds) and `resolution` (768P or 2K) are required"))
    job = new_job(state, "novita", task, model, files.media_key(texts[0], image))
    return json_response(200, {"task_id": job.id})


async def minimax_result(request: web.Request, state: MediaState) -> web.Response:
    """`GET /novita/v3/minimax/v2/query/video_generation/<id>`: queued, running, then succeeded or failed."""
    job = job_by_id(state, "novita", request.match_info["id"], _minimax_error(404))
    phase = job.poll()[0]
    task: dict[str, Any] = {"task_id": job.id, "status": phase if phase != "done" else "succeeded"}
    if phase == "done" and job.fails:
        task |= {"status": "failed", "error": {"code": "generation_failed", "message": FAILURE}}
    elif phase == "done":
        task["content"] = {"url": media_url(state, request, "image-to-video", job.key)}
    return json_response(200, {"task": task})


def add_routes(app: web.Application, state: MediaState) -> None:
    """Register the task-id polled routes on `app`."""
    app.router.add_post("/zai-org/api/paas/v4/async/images/generations", guarded(state, bind(state, zai_submit)))
    app.router.add_get("/zai-org/api/paas/v4/async-result/{id}", guarded(state, bind(state, zai_result)))
    app.router.add_post("/novita/v3/minimax/v2/video_generation", guarded(state, bind(state, minimax_submit)))
    app.router.add_get("/novita/v3/minimax/v2/query/video_generation/{id}", guarded(state, bind(state, minimax_result)))
