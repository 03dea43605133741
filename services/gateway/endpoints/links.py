"""Short-lived, unguessable gateway URLs for media in the object store (`response_format: url`).

A link is a random token kept in a NATS KV bucket whose entries expire: every gateway instance can serve a link
another one made, and nothing is kept once it has expired. The object itself stays where the consumer put it.
"""

from __future__ import annotations

import secrets

import msgspec
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from schemas.media import MediaRef
from services.bus.jetstream import get_struct, open_key_value
from services.gateway.errors import ApiError
from services.gateway.state import GATEWAY
from services.settings import Settings

LINK_TTL_S = 3600.0
"""How long a media link works: long enough to fetch, short enough not to be a permanent public address."""


class MediaLinks:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, nc: NATS, settings: Settings) -> MediaLinks:
        bucket = f"{settings.subjects.stream}_LINKS"
        return cls(await open_key_value(nc, bucket, ttl_s=LINK_TTL_S, replicas=settings.replicas))

    async def create(self, ref: MediaRef) -> str:
        """A new token for `ref` (at least 256 bits from `secrets`, URL-safe)."""
        token = secrets.token_urlsafe(32)
        await self._kv.create(token, msgspec.json.encode(msgspec.structs.replace(ref, data=None)))
        return token

    async def resolve(self, token: str) -> MediaRef | None:
        if not token or len(token) > 64 or not token.replace("-", "").replace("_", "").isalnum():
            return None
        return await get_struct(self._kv, token, MediaRef)


LINKS: web.AppKey[MediaLinks] = web.AppKey("links", MediaLinks)


async def content(request: web.Request) -> web.Response:
    """`GET /v1/files/{token}/content`: the object's bytes; no key needed, the token is the capability."""
    ref = await request.app[LINKS].resolve(request.match_info["token"])
    if ref is None:
        raise ApiError(404, "this link is unknown or has expired", type="not_found_error", code="not_found")
    data = await request.app[GATEWAY].bus.download(ref)
    return web.Response(body=data, content_type=ref.content_type, headers={"Cache-Control": "private, max-age=60"})
