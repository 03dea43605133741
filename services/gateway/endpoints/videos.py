"""OpenAI's videos API over `ai.text2vid` / `ai.pic2vid`: `POST /v1/videos`, `GET /v1/videos/{id}`,
`GET /v1/videos/{id}/content`.

A video job outlives the HTTP request that started it, so its state lives in a NATS KV bucket that every gateway
instance reads: the instance that started the job follows the bus request and writes its progress there. If that
instance goes away, durable mode still keeps the job's final output, and a later `GET` finds it there.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import anyio
import msgspec
import orjson
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from schemas import Error, Progress, Tag
from schemas.media import MediaRef, MediaResult
from schemas.video import Pic2VidRequest, Text2VidRequest
from services.bus.jetstream import get_struct, open_key_value
from services.gateway.errors import ApiError, bad_request, from_output
from services.gateway.exchange import Exchange
from services.gateway.requests import field_of, form_file, form_text, read_form
from services.gateway.state import GATEWAY, REQUEST_ID, Gateway
from services.settings import Settings

JOB_TTL_S = 24 * 3600.0
"""How long a video job (and its link to the media) can be looked up after it started."""

Status = Literal["queued", "in_progress", "completed", "failed"]
_PROGRESS = {"queued": 0, "running": 50, "completed": 100}


class VideoJob(msgspec.Struct, kw_only=True):
    id: str
    key_name: str
    tag: Tag
    model: str
    prompt: str | None
    seconds: str
    size: str
    created_at: int
    status: Status = "queued"
    progress: int = 0
    completed_at: int | None = None
    error: dict[str, str] | None = None
    media: MediaRef | None = None

    def public(self) -> dict[str, Any]:
        """The job as OpenAI's `video` object."""
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": self.status,
            "progress": self.progress,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "expires_at": self.created_at + int(JOB_TTL_S),
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "error": self.error,
            "remixed_from_video_id": None,
        }


class VideoJobs:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, nc: NATS, settings: Settings) -> VideoJobs:
        bucket = f"{settings.subjects.stream}_VIDEOS"
        return cls(await open_key_value(nc, bucket, ttl_s=JOB_TTL_S, replicas=settings.replicas))

    async def put(self, job: VideoJob) -> None:
        await self._kv.put(job.id, msgspec.json.encode(job))

    async def get(self, job_id: str) -> VideoJob | None:
        if not job_id.startswith("video_") or not job_id[6:].isalnum():
            return None
        return await get_struct(self._kv, job_id, VideoJob)


JOBS: web.AppKey[VideoJobs] = web.AppKey("video_jobs", VideoJobs)


async def create(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    request_id = request[REQUEST_ID]
    fields = await _fields(request)
    tag = Tag.PIC2VID if "image" in fields else Tag.TEXT2VID
    model = fields.pop("model", None)
    seconds, size = fields.pop("seconds", None) or "4", fields.pop("size", None) or "720x1280"
    values = {"id": request_id, "model": model, **fields}
    try:
        bus_request = msgspec.convert(values, Pic2VidRequest if tag == Tag.PIC2VID else Text2VidRequest)
    except msgspec.ValidationError as exc:
        raise bad_request(str(exc), param=field_of(exc)) from None
    admitted = await gateway.guard.admit(
        request.headers.get("Authorization"), model=model or "", tag=tag, reserve_tokens=0
    )
    job = VideoJob(
        id=f"video_{request_id}",
        key_name=admitted.key_name,
        tag=tag,
        model=model or "",
        seconds=seconds,
        size=size,
        prompt=fields.get("prompt"),
        created_at=int(time.time()),
    )
    jobs = request.app[JOBS]
    await jobs.put(job)
    exchange = gateway.exchange(gateway.bus.send(tag, bus_request), admitted)
    gateway.tasks.start_soon(_follow, jobs, job, exchange, name=f"video job {job.id}")
    headers = {**admitted.headers, "x-request-id": request_id}
    return web.Response(body=orjson.dumps(job.public()), content_type="application/json", headers=headers)


async def retrieve(request: web.Request) -> web.Response:
    job = await _own_job(request)
    return web.Response(body=orjson.dumps(job.public()), content_type="application/json")


async def content(request: web.Request) -> web.Response:
    job = await _own_job(request)
    if job.status != "completed" or job.media is None:
        raise ApiError(409, f"video {job.id} is {job.status}, not completed", code="video_not_ready")
    data = await request.app[GATEWAY].bus.download(job.media)
    return web.Response(body=data, content_type=job.media.content_type)


async def _fields(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        raw = await request.json(loads=orjson.loads)
        if not isinstance(raw, dict):
            raise bad_request("the request body must be a JSON object")
        allowed = ("prompt", "model", "seconds", "size", "negative_prompt", "seed")
        return {k: v for k, v in raw.items() if k in allowed and v is not None}
    form = await read_form(request)
    fields: dict[str, Any] = {
        name: value for name in ("prompt", "model", "seconds", "size") if (value := form_text(form, name)) is not None
    }
    if form.get("input_reference") is not None:
        fields["image"] = form_file(form, "input_reference")
    return fields


async def _own_job(request: web.Request) -> VideoJob:
    gateway = request.app[GATEWAY]
    key_name = await gateway.guard.authenticate(request.headers.get("Authorization"))
    job = await request.app[JOBS].get(request.match_info["video_id"])
    # Another key's job answers exactly like a missing one: ids are not a way to probe other tenants.
    if job is None or job.key_name != key_name:
        raise ApiError(404, "no such video", type="not_found_error", code="not_found", param="video_id")
    if job.status in ("queued", "in_progress") and gateway.bus.mode == "durable":
        await _recover(gateway, request.app[JOBS], job)
    return job


async def _recover(gateway: Gateway, jobs: VideoJobs, job: VideoJob) -> None:
    # The instance following this job may be gone; the kept final says how it ended.
    kept = await gateway.bus.final(job.tag, job.id.removeprefix("video_"))
    if isinstance(kept, MediaResult | Error):
        _finish(job, kept)
        await jobs.put(job)


async def _follow(jobs: VideoJobs, job: VideoJob, exchange: Exchange) -> None:
    try:
        async for output in exchange.outputs():
            if isinstance(output, Progress):
                status: Status = "queued" if output.status == "queued" else "in_progress"
                progress = _PROGRESS.get(output.status, 50)
                if (status, progress) != (job.status, job.progress):
                    job.status, job.progress = status, progress
                    await jobs.put(job)
            elif isinstance(output, MediaResult | Error):
                _finish(job, output)
                with anyio.CancelScope(shield=True):
                    await jobs.put(job)
    finally:
        await exchange.hang_up()


def _finish(job: VideoJob, final: MediaResult | Error) -> None:
    job.completed_at = int(time.time())
    if isinstance(final, MediaResult) and final.media:
        job.status, job.progress, job.media = "completed", 100, final.media[0]
        job.model = final.model or job.model
    else:
        error = from_output(final) if isinstance(final, Error) else None
        message = error.message if error is not None else "the provider returned no video"
        job.status, job.error = "failed", {"code": str(error.code if error else "internal"), "message": message}
