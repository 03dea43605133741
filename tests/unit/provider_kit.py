"""What the provider adapter tests share: inputs, canned replies, and a flow driver like the executor's."""

from __future__ import annotations

import base64
import json
from typing import Any

from services.hf.providers import (
    Download,
    HttpCall,
    HttpReply,
    Pending,
    Step,
    Task,
    TaskAdapter,
    TaskInput,
    get_adapter,
)

BASE = "https://router.huggingface.co"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 8
FLAC = b"fLaC" + b"\x00" * 8
JSON_HEADERS = {"Content-Type": "application/json"}
IMAGE_HEADERS = {"Accept": "image/png", "Content-Type": "application/json"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inp(task: Task, model: str, **fields: Any) -> TaskInput:
    return TaskInput(task=task, provider_model=model, hf_model="org/hf-model", **fields)


def reply(body: Any, call: HttpCall | None = None, headers: dict[str, str] | None = None) -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpReply(200, headers or {"content-type": "application/json"}, raw, call)


def adapter(provider: str, task: Task) -> TaskAdapter:
    return get_adapter(provider, task)


def run(provider: str, data: TaskInput, *bodies: Any) -> list[Step]:
    """Drive a flow like the executor: each body answers the call of the step before."""
    helper = adapter(provider, data.task)
    call: HttpCall | None = helper.prepare(data, BASE)
    steps: list[Step] = []
    for body in bodies:
        assert call is not None, "flow ended before all replies were used"
        headers = {"content-type": "application/octet-stream"} if isinstance(body, bytes) else None
        step = helper.parse(data, reply(body, call, headers), BASE)
        steps.append(step)
        call = step.call if isinstance(step, Pending | Download) else None
    return steps


def assert_call(call: HttpCall, method: str, url: str, headers: dict[str, str], body: Any) -> None:
    assert (call.method, call.url) == (method, url)
    assert call.headers == headers
    assert "Authorization" not in call.headers
    if isinstance(body, bytes):
        assert (call.json, call.data) == (None, body)
    else:
        assert (call.json, call.data) == (body, None)


def download(url: str) -> Download:
    return Download(HttpCall("GET", url, {}, authenticated=False, purpose="download"))
