"""`POST /v1/images/generations` (`ai.text2pic`) and `POST /v1/images/edits` (multipart, `ai.pic2pic`).

`response_format: b64_json` inlines each image; `url` (OpenAI's default) answers a short-lived gateway link to
the object the consumer stored (see `links`).
"""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

import msgspec
import orjson
from aiohttp import web

from schemas import Tag
from schemas.images import Pic2PicRequest, Text2PicRequest
from schemas.media import MediaResult
from services.gateway.endpoints.links import LINKS
from services.gateway.errors import bad_request
from services.gateway.requests import form_file, form_text, read_form, read_json
from services.gateway.state import GATEWAY, Gateway, submit

ResponseFormat = Literal["url", "b64_json"]


class GenerationBody(msgspec.Struct, kw_only=True):
    prompt: str
    model: str | None = None
    n: int = 1
    size: str | None = None
    response_format: ResponseFormat = "url"
    negative_prompt: str | None = None
    seed: int | None = None


async def generations(request: web.Request) -> web.Response:
    body = await read_json(request, GenerationBody)
    _only_one(body.n)
    width, height = _size(body.size)
    fields = {"prompt": body.prompt, "width": width, "height": height}
    fields |= {"negative_prompt": body.negative_prompt, "seed": body.seed}
    return await _answer(request, Tag.TEXT2PIC, Text2PicRequest, body.model, fields, body.response_format)


async def edits(request: web.Request) -> web.Response:
    form = await read_form(request)
    if (form_text(form, "n") or "1") != "1":
        raise bad_request("only n=1 is supported", param="n")
    raw_format = form_text(form, "response_format") or "url"
    if raw_format not in ("url", "b64_json"):
        raise bad_request("`response_format` must be url or b64_json", param="response_format")
    response_format: ResponseFormat = "b64_json" if raw_format == "b64_json" else "url"
    if form.get("mask") is not None:
        raise bad_request("`mask` is not supported: the providers edit the whole image", param="mask")
    fields = {"image": form_file(form, "image", "image[]"), "prompt": form_text(form, "prompt", required=True)}
    model = form_text(form, "model")
    return await _answer(request, Tag.PIC2PIC, Pic2PicRequest, model, fields, response_format)


async def _answer(
    request: web.Request,
    tag: Tag,
    request_type: type[Text2PicRequest] | type[Pic2PicRequest],
    model: str | None,
    fields: dict[str, Any],
    response_format: ResponseFormat,
) -> web.Response:
    result: MediaResult
    result, headers = await submit(request, tag, request_type, model, fields)
    gateway = request.app[GATEWAY]
    data = [await _image(request, gateway, ref, response_format) for ref in result.media]
    reply = {
        "created": int(time.time()),
        "data": data,
        "model": result.model,
        "provider": result.provider,
        "cost_usd": result.cost_usd,
    }
    return web.Response(body=orjson.dumps(reply), content_type="application/json", headers=headers)


async def _image(request: web.Request, gateway: Gateway, ref: Any, response_format: ResponseFormat) -> dict[str, str]:
    if response_format == "b64_json":
        return {"b64_json": base64.b64encode(await gateway.bus.download(ref)).decode()}
    token = await request.app[LINKS].create(ref)
    return {"url": str(request.url.with_path(f"/v1/files/{token}/content").with_query(None))}


def _only_one(n: int) -> None:
    if n != 1:
        raise bad_request("only n=1 is supported", param="n")


def _size(size: str | None) -> tuple[int | None, int | None]:
    if size is None or size == "auto":
        return None, None
    width, sep, height = size.partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise bad_request(f"`size` must be WIDTHxHEIGHT, e.g. 1024x1024; got {size!r}", param="size")
    return int(width), int(height)
