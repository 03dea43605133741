"""Injected failures and the router's error answers, shared by every fake route."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import orjson
from aiohttp import web

FaultKind = Literal["status", "error_event", "stall", "drop"]

_POLL_S = 0.05
_MODEL_TRIGGER = re.compile(r"fake/(?:status-(?P<code>\d{3})|(?P<name>stall|drop|error-event))")

# TGI answers a failed non-streamed generation with these statuses (text_generation_server's error mapping).
_ERROR_TYPE_STATUS = {"validation": 422, "overloaded": 429, "generation": 424, "incomplete_generation": 500}


class ServerStopping(Exception):
    """Raised by `pause` when the app is shutting down, so a stalled answer does not hold up cleanup."""


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for one chat request; build with the classmethods."""

    kind: FaultKind
    code: int = 200
    body: bytes | None = None
    retry_after: float | None = None
    content_type: str = "application/json"
    after_tokens: int = 0
    error_type: str = "overloaded"
    message: str = ""
    seconds: float = 0.0

    @classmethod
    def status(
        cls,
        code: int,
        *,
        body: bytes | None = None,
        retry_after: float | None = None,
        content_type: str = "application/json",
    ) -> Fault:
        """Answer with HTTP `code`, the router's usual body unless `body` is given, and `Retry-After` when set."""
        if not 200 <= code <= 599:
            raise ValueError(f"status must be 200..599, got {code}")
        return cls(kind="status", code=code, body=body, retry_after=retry_after, content_type=content_type)

    @classmethod
    def error_event(
        cls, *, after_tokens: int = 2, error_type: str = "overloaded", message: str = "Model is overloaded"
    ) -> Fault:
        """Stream `after_tokens` content events, then a TGI-style `{"error", "error_type"}` event, and end."""
        return cls(kind="error_event", after_tokens=after_tokens, error_type=error_type, message=message)

    @classmethod
    def stall(cls, *, after_tokens: int = 0, seconds: float = 3600) -> Fault:
        """Send headers and `after_tokens` content events, go silent for `seconds`, then finish normally."""
        return cls(kind="stall", after_tokens=after_tokens, seconds=seconds)

    @classmethod
    def drop(cls, *, after_tokens: int = 2) -> Fault:
        """Send `after_tokens` content events, then close the connection mid-body without `[DONE]`."""
        return cls(kind="drop", after_tokens=after_tokens)


def fault_for_model(model: str) -> Fault | None:
    """The fault a `fake/...` model name asks for, so the demo can show failures without code."""
    match = _MODEL_TRIGGER.fullmatch(model)
    if match is None:
        return None
    if (code := match["code"]) is not None:
        status = int(code)
        return Fault.status(status) if 200 <= status <= 599 else None
    name = match["name"]
    if name == "stall":
        return Fault.stall()
    if name == "drop":
        return Fault.drop()
    return Fault.error_event()


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with the given status."""
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers)


def unauthorized() -> web.Response:
    """The router's answer to a missing or wrong token."""
    return json_response(
        401,
        {"error": "Invalid username or password."},
        {"www-authenticate": 'Bearer realm="Authentication required"'},
    )


def bad_request(message: str) -> web.Response:
    """An OpenAI-style 400, as providers answer a malformed chat body."""
    return json_response(400, {"error": {"message": message, "type": "invalid_request_error"}})


def auth_error(request: web.BaseRequest, token: str | None) -> web.Response | None:
    """A 401 unless the request carries `Bearer <token>` (any token when `token` is None)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return unauthorized()
    if token is not None and not secrets.compare_digest(given.encode(), token.encode()):
        return unauthorized()
    return None


def default_error_body(code: int, model: str) -> bytes:
    """The body the router (or a typical provider behind it) sends with status `code`."""
    payload: dict[str, Any]
    match code:
        case 400:
            payload = {"error": {"message": "Bad request", "type": "invalid_request_error"}}
        case 401:
            payload = {"error": "Invalid username or password."}
        case 402:
            payload = {
                "error": "You have exceeded your monthly included credits for Inference Providers. "
                "Subscribe to PRO to get 20x more monthly included credits."
            }
        case 403:
            payload = {
                "error": "This authentication method does not have sufficient permissions to call Inference Providers."
            }
        case 404:
            payload = {"error": f"Model {model} does not exist"}
        case 422:
            payload = {
                "error": "Input validation error: `inputs` must have less than 4096 tokens.",
                "error_type": "validation",
            }
        case 429:
            payload = {"error": "Rate limit reached. You reached the rate limit for this model, please retry later."}
        case 500:
            payload = {
                "error": {"message": "The server had an error while processing your request.", "type": "server_error"}
            }
        case 503:
            payload = {"error": f"Model {model} is currently loading", "estimated_time": 20.0}
        case _:
            try:
                payload = {"error": HTTPStatus(code).phrase}
            except ValueError:
                payload = {"error": f"Upstream error {code}"}
    return orjson.dumps(payload)


def status_response(fault: Fault, model: str, headers: dict[str, str]) -> web.Response:
    """The HTTP answer of a `Fault.status`."""
    out = dict(headers)
    out["Content-Type"] = fault.content_type
    if fault.retry_after is not None:
        out["Retry-After"] = _format_seconds(fault.retry_after)
    if fault.code == 401:
        out["www-authenticate"] = 'Bearer realm="Authentication required"'
    body = fault.body if fault.body is not None else default_error_body(fault.code, model)
    return web.Response(status=fault.code, body=body, headers=out)


def error_event_response(fault: Fault, headers: dict[str, str]) -> web.Response:
    """The HTTP error that stands in for an error event when the request was not streamed."""
    status = _ERROR_TYPE_STATUS.get(fault.error_type, 500)
    return json_response(status, {"error": fault.message, "error_type": fault.error_type}, headers)


def client_gone(request: web.BaseRequest) -> bool:
    """Whether the peer has closed the connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.BaseRequest, seconds: float, is_stopping: Callable[[], bool]) -> None:
    """Sleep for `seconds`; raises ConnectionResetError when the client leaves and ServerStopping on shutdown."""
    # aiohttp does not cancel handlers when the peer disconnects, so a long silence has to poll for it.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        if client_gone(request):
            raise ConnectionResetError("client went away")
        if is_stopping():
            raise ServerStopping
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, _POLL_S))


def abort(request: web.BaseRequest) -> None:
    """Close the connection under a response, so the client sees a truncated body."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _format_seconds(seconds: float) -> str:
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")
