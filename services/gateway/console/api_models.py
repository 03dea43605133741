"""The models screen: the catalog, a Hub provider-mapping lookup for any model id, and the per-tag defaults.

GET    /admin/api/models                    the catalog, the live defaults per tag, the strategies on offer
GET    /admin/api/models/lookup?id=<hf id>  the Hub's provider mapping for it, and its catalog price if listed
PUT    /admin/api/defaults/{tag}            {"model": ..., "strategy": ...}: stored in NATS KV, applied by
                                            every consumer to its next request
DELETE /admin/api/defaults/{tag}            back to the catalog's defaults
"""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from schemas import Tag
from schemas.operations import POLICY_STRATEGIES, STRATEGY_PATTERN, TagDefaults
from services.catalog import CHAT_TAGS, InvalidModelError, UnknownModelError
from services.errors import ServiceError, UnknownModel
from services.gateway.console.api_status import json
from services.gateway.console.state import console_of
from services.gateway.errors import ApiError, bad_request
from services.gateway.requests import read_json
from services.hf.providers import PROVIDER_NAMES

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_STRATEGY = re.compile(STRATEGY_PATTERN)


class DefaultsBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str | None = None
    strategy: str | None = None


async def catalog(request: web.Request) -> web.Response:
    console = console_of(request)
    stored = await console.defaults.all()
    tags = []
    for tag in Tag:
        current, revision = stored.get(tag, (None, 0))
        tags.append(
            {
                "tag": str(tag),
                "policies": tag in CHAT_TAGS,
                "catalog_default": console.catalog.default(tag).name if console.catalog.for_tag(tag) else None,
                "model": current.model if current else None,
                "strategy": current.strategy if current else None,
                "updated_at": current.updated_at if current else None,
                "revision": revision,
            }
        )
    models = [msgspec.to_builtins(m) for m in console.catalog.describe().models]
    return json(
        {
            "models": models,
            "tags": tags,
            "policies": list(POLICY_STRATEGIES),
            "providers": sorted(PROVIDER_NAMES),
        }
    )


async def lookup(request: web.Request) -> web.Response:
    console = console_of(request)
    hf_id = request.query.get("id", "").strip()
    if not _HF_ID.match(hf_id):
        raise bad_request("`id` must be a HuggingFace model id, owner/name", param="id")
    try:
        routes = await console.hub.routes(hf_id)
    except UnknownModel as err:
        raise ApiError(404, err.message, type="not_found_error", code="model_not_found") from None
    except ServiceError as err:
        message = f"the Hub did not answer: {err.message}"
        raise ApiError(502, message, type="server_error", code=err.code.value) from None
    listed = [m for m in console.catalog.describe().models if m.hf_model.casefold() == hf_id.casefold()]
    return json(
        {
            "id": hf_id,
            "providers": [
                {
                    "provider": r.provider,
                    "provider_model": r.provider_model,
                    "task": r.task,
                    "status": r.status,
                    # Chat goes through the router's own routing; other tasks need one of hfbus's adapters.
                    "adapter": r.provider in PROVIDER_NAMES,
                }
                for r in routes
            ],
            "catalog": [{"name": m.name, "tag": str(m.tag), "prices": m.prices, "default": m.default} for m in listed],
        }
    )


async def set_defaults(request: web.Request) -> web.Response:
    console = console_of(request)
    tag = _tag(request)
    body = await read_json(request, DefaultsBody)
    model = (body.model or "").strip() or None
    strategy = (body.strategy or "").strip().lower() or None
    if strategy is not None:
        if not _STRATEGY.match(strategy):
            wanted = "`strategy` must be auto, fastest, cheapest, preferred or a provider name"
            raise bad_request(wanted, param="strategy")
        if strategy in POLICY_STRATEGIES and tag not in CHAT_TAGS:
            raise bad_request(f"`{strategy}` is a router policy: chat and pic2text only", param="strategy")
        if tag not in CHAT_TAGS and strategy not in ("auto", *PROVIDER_NAMES):
            known = ", ".join(sorted(PROVIDER_NAMES))
            raise bad_request(f"no {tag} adapter for provider `{strategy}`; known: {known}", param="strategy")
    if model is not None:
        if ":" in model:
            raise bad_request("the default model takes no `:suffix`: set the strategy instead", param="model")
        try:
            console.catalog.resolve(tag, model)
        except (UnknownModelError, InvalidModelError) as exc:
            raise bad_request(str(exc), param="model") from None
    if model is None and strategy is None:
        revision = await console.defaults.clear(tag)
    else:
        revision = await console.defaults.put(tag, TagDefaults(model=model, strategy=strategy))
    return json({"tag": str(tag), "model": model, "strategy": strategy, "revision": revision})


async def clear_defaults(request: web.Request) -> web.Response:
    console = console_of(request)
    tag = _tag(request)
    revision = await console.defaults.clear(tag)
    return json({"tag": str(tag), "model": None, "strategy": None, "revision": revision})


def _tag(request: web.Request) -> Tag:
    name = request.match_info["tag"]
    try:
        return Tag(name)
    except ValueError:
        raise ApiError(404, f"no tag {name!r}", type="not_found_error", code="unknown_tag") from None
