"""What every route of the gateway shares, and the seam to keys and limits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from aiohttp import web
from anyio.abc import TaskGroup

from schemas import Error, RequestBase, Result, Tag
from services.catalog import Catalog
from services.client import HfBus, Stream
from services.gateway.errors import ApiError, bad_request, from_output, with_headers
from services.gateway.exchange import Exchange
from services.gateway.requests import field_of


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

    async def run(self, tag: Tag, request: RequestBase, admitted: Pass, headers: dict[str, str]) -> Any:
        """Send `request` and wait for its `result`; an `error` output is raised as the matching HTTP error."""
        exchange = self.exchange(self.bus.send(tag, request), admitted)
        try:
            async for output in exchange.outputs():
                if isinstance(output, Error):
                    raise with_headers(from_output(output), headers)
                if isinstance(output, Result):
                    return output
        finally:
            await exchange.hang_up()
        raise ApiError(500, "the request ended without an answer", type="server_error", code="internal")


GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)


def new_request_id() -> str:
    """A bus request id that also serves as the HTTP `x-request-id` (and the OpenAI object id's suffix)."""
    return f"gw{uuid.uuid4().hex}"


async def submit(
    request: web.Request,
    tag: Tag,
    request_type: type[Any],
    model: str | None,
    fields: dict[str, Any],
    *,
    reserve_tokens: int = 0,
) -> tuple[Any, dict[str, str]]:
    """Build a bus request from the fields an endpoint read, admit it against the key, and run it to its result.

    Returns the result and the headers every answer carries (request id, rate limits).
    """
    gateway = request.app[GATEWAY]
    request_id = request[REQUEST_ID]
    values = {"id": request_id, "model": model, **{k: v for k, v in fields.items() if v is not None}}
    try:
        # convert, not the constructor: the contract's constraints are checked, naming the field.
        bus_request = msgspec.convert(values, request_type, from_attributes=True)
    except msgspec.ValidationError as exc:
        raise bad_request(str(exc), param=field_of(exc)) from None
    authorization = request.headers.get("Authorization")
    admitted = await gateway.guard.admit(authorization, model=model or "", tag=tag, reserve_tokens=reserve_tokens)
    headers = {**admitted.headers, "x-request-id": request_id}
    return await gateway.run(tag, bus_request, admitted, headers), headers
