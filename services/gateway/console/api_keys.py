"""Keys, spend and traffic for the console.

GET    /admin/api/keys               every key (never the key itself) with its limits and spend
POST   /admin/api/keys               {"name", "rpm", "tpm", "budget_usd", "models"}: the new key, shown once
DELETE /admin/api/keys/{name}        revoke
GET    /admin/api/spend?days=14      requests and cost per UTC day, per key and per model
GET    /admin/api/activity           requests and errors per tag per minute, the last hour
GET    /admin/api/requests?after=N   the finished requests after event N (the live tail)
POST   /admin/api/playground-key     a fresh key for the console's own playground (the previous one is revoked)
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from nats.errors import Error as NatsError

from services.gateway.access.keys import DuplicateKeyName, KeyStoreError
from services.gateway.access.limits import LimitsUnavailable
from services.gateway.access.spend import SpendUnavailable
from services.gateway.console.api_status import json
from services.gateway.console.state import console_of
from services.gateway.errors import ApiError, bad_request
from services.gateway.requests import read_json

PLAYGROUND_KEY = "console-playground"
"""The name of the key the console mints for its playground; its spend shows beside the others."""

_UNAVAILABLE = ApiError(503, "NATS did not answer in time; try again", type="server_error", code="service_unavailable")


class NewKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    models: list[str] | None = None


async def list_keys(request: web.Request) -> web.Response:
    console = console_of(request)
    try:
        records = await console.guard.keys.list()
        spend = (await console.guard.limiter.spend())["keys"]
    except (LimitsUnavailable, NatsError, TimeoutError):
        raise _UNAVAILABLE from None
    keys = []
    for record in reversed(records):  # newest first
        spent = spend.get(record.id, {})
        public = msgspec.to_builtins(record)
        public.pop("key_hash")  # a hash of a 256-bit key reveals nothing, but the console has no use for it
        public |= {k: spent.get(k, 0) for k in ("requests", "tokens", "cost_usd")}
        keys.append(public)
    return json({"keys": keys})


async def create_key(request: web.Request) -> web.Response:
    console = console_of(request)
    body = await read_json(request, NewKey)
    models = [m.strip() for m in body.models if m.strip()] if body.models else None
    try:
        key = await console.guard.keys.create(
            body.name.strip(), rpm=body.rpm, tpm=body.tpm, budget_usd=body.budget_usd, models=models or None
        )
    except DuplicateKeyName as err:
        raise ApiError(409, str(err), code="duplicate_key_name", param="name") from None
    except KeyStoreError as err:
        raise bad_request(str(err)) from None
    # The one time the key is seen: not logged, not stored, only this response.
    return json({"name": body.name.strip(), "key": key}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    console = console_of(request)
    name = request.match_info["name"]
    if not await console.guard.keys.revoke(name):
        raise ApiError(404, f"no live key named {name!r}", type="not_found_error", code="key_not_found")
    return json({"name": name, "revoked": True})


async def spend(request: web.Request) -> web.Response:
    console = console_of(request)
    try:
        days = int(request.query.get("days", "14"))
    except ValueError:
        raise bad_request("`days` must be a whole number", param="days") from None
    try:
        return json(await console.guard.limiter.spending.daily(days))
    except (SpendUnavailable, NatsError, TimeoutError):
        raise _UNAVAILABLE from None


async def activity(request: web.Request) -> web.Response:
    return json(console_of(request).activity.hour())


async def requests(request: web.Request) -> web.Response:
    console = console_of(request)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise bad_request("`after` must be a whole number", param="after") from None
    return json(console.activity.tail(after))


async def playground_key(request: web.Request) -> web.Response:
    console = console_of(request)
    keys = console.guard.keys
    try:
        await keys.revoke(PLAYGROUND_KEY)
        key = await keys.create(PLAYGROUND_KEY)
    except DuplicateKeyName:
        raise ApiError(409, "another console is minting its key right now; try again", code="busy") from None
    body: dict[str, Any] = {"name": PLAYGROUND_KEY, "key": key}
    return json(body, status=201)
