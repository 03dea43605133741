"""What every route of the gateway shares, and the seam to keys and limits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from anyio.abc import TaskGroup

from schemas import Error, Result, Tag
from services.catalog import Catalog
from services.client import HfBus, Stream
from services.gateway.exchange import Exchange


class Pass(Protocol):
    """One admitted request: its rate-limit headers, and the settlement of what it actually cost."""

    @property
    def key_name(self) -> str: ...

    @property
    def headers(self) -> dict[str, str]: ...

    async def settle(self, final: Result | Error) -> None:
        """Replace the reservation with the final output's usage and cost (called exactly once)."""
        ...


class Guard(Protocol):
    """Virtual keys and their limits."""

    async def authenticate(self, authorization: str | None) -> str:
        """The name of the bearer key; raises `ApiError` 401 for a missing, unknown or revoked key."""
        ...

    async def admit(self, authorization: str | None, *, model: str, tag: Tag, reserve_tokens: int) -> Pass:
        """Check the bearer key and its limits; raises `ApiError` (401, 403 or 429) when the request may not run."""
        ...


@dataclass(frozen=True, slots=True)
class Gateway:
    bus: HfBus
    tasks: TaskGroup
    catalog: Catalog
    guard: Guard

    def exchange(self, stream: Stream[Any], admitted: Pass) -> Exchange:
        return Exchange(stream, admitted.settle).start(self.tasks)


GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)


def new_request_id() -> str:
    """A bus request id that also serves as the HTTP `x-request-id` (and the OpenAI object id's suffix)."""
    return f"gw{uuid.uuid4().hex}"
