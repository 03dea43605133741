"""Upstream failures -> `ServiceError` leaves: one place for HTTP statuses, one for in-stream error events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from services.errors import (
    InvalidRequest,
    PaymentRequired,
    RateLimited,
    ServiceError,
    TooLarge,
    Unauthorized,
    UnknownModel,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_MAX_MESSAGE = 300


def router_request_id(headers: Mapping[str, str]) -> str | None:
    """The router's id of a call, what HuggingFace support asks for."""
    return headers.get("x-request-id") or headers.get("x-amzn-trace-id")


def error_for_status(status: int, body: bytes, headers: Mapping[str, str]) -> ServiceError:
    """Translate a non-2xx router reply into the leaf its status means."""
    detail = upstream_message(body) or "no details"
    request_id = router_request_id(headers)
    where = f" (router request id {request_id})" if request_id else ""
    text = f"upstream HTTP {status}: {detail}{where}"
    retry_after = _retry_after(headers, body)
    match status:
        case 400 | 422:
            return InvalidRequest(f"upstream rejected the request, {text}", status=status)
        case 401 | 403:
            return Unauthorized(f"HuggingFace refused the token, {text}", status=status)
        case 402:
            return PaymentRequired(f"HuggingFace credits exhausted, {text}", status=status)
        case 404:
            return UnknownModel(f"model not found or not served, {text}", status=status)
        case 408:
            return UpstreamTimeout(text, status=status, retry_after=retry_after)
        case 413:
            return TooLarge(f"upstream refused the payload size, {text}", status=status)
        case 429:
            return RateLimited(text, status=status, retry_after=retry_after)
        case _ if status >= 500:
            return UpstreamUnavailable(text, status=status, retry_after=retry_after)
        case _:
            return UpstreamError(text, status=status)


def error_for_event(event: Any, error_type: str | None) -> ServiceError:
    """Translate an `{"error": …}` event that arrived inside a 200 stream (TGI or OpenAI style)."""
    message = _message_of(event) or "upstream reported an error"
    if isinstance(event, dict) and error_type is None:
        kind = event.get("type") or event.get("code")
        error_type = kind if isinstance(kind, str) else None
    text = f"upstream error during the stream ({error_type or 'unknown'}): {message[:_MAX_MESSAGE]}"
    match error_type:
        case "overloaded" | "server_error":
            return UpstreamUnavailable(text)
        case "validation" | "invalid_request_error":
            return InvalidRequest(text)
        case _:
            return UpstreamError(text)


def upstream_message(body: bytes) -> str:
    """The human message of an error body in any of the shapes providers use; empty when there is none."""
    if not body:
        return ""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        # An HTML error page says nothing useful beyond its status.
        return "" if text.startswith("<") else text[:_MAX_MESSAGE]
    return (_message_of(parsed) or "")[:_MAX_MESSAGE]


def _message_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("error", "message", "detail", "title"):
            if key in value and (found := _message_of(value[key])):
                return found
    if isinstance(value, list) and value:
        return _message_of(value[0])
    return None


def _retry_after(headers: Mapping[str, str], body: bytes) -> float | None:
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None  # an HTTP-date: rare on the router, and the backoff still applies
    if b"estimated_time" in body:
        try:
            estimate = orjson.loads(body).get("estimated_time")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        if isinstance(estimate, int | float):
            return float(estimate)
    return None
