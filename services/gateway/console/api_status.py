"""`GET /admin/api/status` (the HuggingFace token, NATS) and `GET /admin/api/consumers` (`$SRV.INFO` / `STATS`)."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from services import __version__
from services.gateway.console.state import Console, console_of

DISCOVERY_WAIT_S = 1.0
"""The longest a consumer list waits for answers: discovery cannot know how many instances there are."""
DISCOVERY_QUIET_S = 0.25
"""...and it stops earlier once no answer came for this long."""


def json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def status(request: web.Request) -> web.Response:
    console = console_of(request)
    token = await console.token_status(refresh=request.query.get("refresh") == "1")
    token["last_refusals"] = console.activity.last_refusals
    return json(
        {
            "huggingface": token,
            "nats": await _nats(console),
            "gateway": {"version": __version__, "prefix": console.settings.prefix},
        }
    )


async def _nats(console: Console) -> dict[str, Any]:
    nc = console.bus.nc
    url = nc.connected_url
    version = nc.connected_server_version
    info: dict[str, Any] = {
        "connected": nc.is_connected,
        # Host and port only: a URL may carry a user and password.
        "server": f"{url.hostname}:{url.port}" if url is not None else None,
        "server_version": f"{version.major}.{version.minor}.{version.patch}" if nc.is_connected else None,
        "server_name": nc._server_info.get("server_name") if nc.is_connected else None,
        "mode": console.bus.mode,
        "jetstream": False,
    }
    try:
        with anyio.fail_after(2):
            account = await nc.jetstream().account_info()
    except (NatsError, TimeoutError):
        return info
    info["jetstream"] = True
    info["jetstream_usage"] = {
        "streams": account.streams,
        "consumers": account.consumers,
        "memory_bytes": account.memory,
        "storage_bytes": account.storage,
    }
    return info


async def consumers(request: web.Request) -> web.Response:
    console = console_of(request)
    nc, prefix = console.bus.nc, console.settings.prefix
    infos, stats = await _gather(nc, "$SRV.INFO.hfbus"), await _gather(nc, "$SRV.STATS.hfbus")
    by_id = {s.get("id"): s for s in stats}
    found = []
    for info in infos:
        metadata = info.get("metadata") or {}
        if metadata.get("prefix") != prefix:
            continue  # another deployment on the same NATS account
        stat = by_id.get(info.get("id"), {})
        endpoints = []
        for endpoint in stat.get("endpoints") or []:
            data = endpoint.get("data") or {}
            endpoints.append(
                {
                    "tag": endpoint.get("name"),
                    "requests": endpoint.get("num_requests", 0),
                    "errors": endpoint.get("num_errors", 0),
                    "average_ms": round(endpoint.get("average_processing_time", 0) / 1e6, 1),
                    "in_flight": data.get("in_flight", 0),
                    "last_error": endpoint.get("last_error") or None,
                }
            )
        found.append(
            {
                "id": info.get("id"),
                "version": info.get("version"),
                "mode": metadata.get("mode"),
                "defaults_revision": int(metadata.get("defaults_revision") or 0),
                "started": stat.get("started"),
                "tags": [e.get("name") for e in info.get("endpoints") or []],
                "endpoints": endpoints,
            }
        )
    found.sort(key=lambda c: str(c["started"] or ""))
    return json({"consumers": found})


async def _gather(nc: NATS, subject: str) -> list[dict[str, Any]]:
    """Every answer to one discovery request, until a quiet spell or the deadline."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    answers: list[dict[str, Any]] = []
    try:
        await nc.publish(subject, b"", reply=inbox)
        with anyio.move_on_after(DISCOVERY_WAIT_S):
            while True:
                try:
                    msg = await subscription.next_msg(timeout=DISCOVERY_QUIET_S)
                except NatsError:  # nats' TimeoutError: nobody else is answering
                    break
                try:
                    answers.append(orjson.loads(msg.data))
                except orjson.JSONDecodeError:
                    continue
    finally:
        await subscription.unsubscribe()
    return answers
