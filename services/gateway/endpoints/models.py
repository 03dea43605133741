"""`GET /v1/models`: the catalog as OpenAI's model list, with hfbus's tag, HF id and prices beside each id."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from schemas.models import ModelInfo
from services.gateway.errors import ApiError
from services.gateway.state import GATEWAY


async def list_models(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    await gateway.guard.authenticate(request.headers.get("Authorization"))
    data = [_model(info) for info in gateway.catalog.describe().models]
    return _json({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    await gateway.guard.authenticate(request.headers.get("Authorization"))
    wanted = request.match_info["model"]
    for info in gateway.catalog.describe().models:
        if wanted in (info.name, info.hf_model):
            return _json(_model(info))
    raise ApiError(404, f"The model `{wanted}` is not in the catalog", param="model", code="model_not_found")


def _model(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.name,
        "object": "model",
        "created": 0,
        "owned_by": info.hf_model.split("/", 1)[0],
        "hf_model": info.hf_model,
        "tag": str(info.tag),
        "display_name": info.display_name,
        "prices": info.prices,
        "default": info.default,
    }


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
