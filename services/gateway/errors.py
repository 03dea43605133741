"""Errors as the OpenAI API returns them: `{"error": {"message", "type", "param", "code"}}` with a fitting status.

The official SDKs pick their exception class from the status (401 AuthenticationError, 404 NotFoundError, 429
RateLimitError, ...) and show `message`; `code` keeps hfbus's own error code so callers can branch on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from schemas import Error, ErrorCode

# (HTTP status, OpenAI error type) per wire code. HuggingFace refusing *our* token is still the caller's 401/402
# as far as an SDK can tell: nothing it retries will fix it.
_BY_CODE: dict[ErrorCode, tuple[int, str]] = {
    ErrorCode.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorCode.TOO_LARGE: (413, "invalid_request_error"),
    ErrorCode.UNKNOWN_MODEL: (404, "invalid_request_error"),
    ErrorCode.UNAUTHORIZED: (401, "authentication_error"),
    ErrorCode.PAYMENT_REQUIRED: (402, "insufficient_quota"),
    ErrorCode.RATE_LIMITED: (429, "rate_limit_error"),
    ErrorCode.UPSTREAM_UNAVAILABLE: (503, "server_error"),
    ErrorCode.UPSTREAM_ERROR: (502, "server_error"),
    ErrorCode.TIMEOUT: (504, "server_error"),
    ErrorCode.CANCELLED: (499, "server_error"),
    ErrorCode.INTERNAL: (500, "server_error"),
}


_FIELD = re.compile(r"^([a-z_][a-z0-9_]*)(?:[.\[][^:\s]*)?: ")


class ApiError(Exception):
    """An error answered in OpenAI's shape; raise it from a route and the middleware renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self, request_id: str) -> web.Response:
        return web.Response(
            status=self.status,
            body=orjson.dumps(self.body()),
            content_type="application/json",
            headers={**self.headers, "x-request-id": request_id},
        )


def bad_request(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=ErrorCode.INVALID_REQUEST)


def from_output(error: Error) -> ApiError:
    """The bus's `error` output as the HTTP error an OpenAI SDK expects."""
    status, kind = _BY_CODE.get(error.code, (500, "server_error"))
    headers: dict[str, str] = {}
    if error.code == ErrorCode.RATE_LIMITED:
        headers["retry-after"] = "1"
    if error.code == ErrorCode.PAYMENT_REQUIRED:
        headers["x-should-retry"] = "false"
    param = "model" if error.code == ErrorCode.UNKNOWN_MODEL else _named_field(error.message)
    return ApiError(status, error.message, type=kind, code=str(error.code), param=param, headers=headers)


def _named_field(message: str) -> str | None:
    # The consumers' invalid_request messages start with the field they refuse: "image: not an image (...)".
    match = _FIELD.match(message)
    return match.group(1) if match else None


def sse_error(error: ApiError) -> bytes:
    """An error after the first streamed chunk: one `data:` event the SDKs raise as APIError, never a silent end."""
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


def with_headers(error: ApiError, headers: Mapping[str, str]) -> ApiError:
    """`error` carrying the response headers every answer gets (request id, rate limits)."""
    error.headers = {**headers, **error.headers}
    return error
