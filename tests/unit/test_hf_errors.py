"""Upstream statuses and in-stream error events -> our error codes."""

from __future__ import annotations

import pytest

from schemas import ErrorCode
from services.hf.errors import error_for_event, error_for_status, upstream_message


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, ErrorCode.INVALID_REQUEST, False),
        (401, ErrorCode.UNAUTHORIZED, False),
        (402, ErrorCode.PAYMENT_REQUIRED, False),
        (403, ErrorCode.UNAUTHORIZED, False),
        (404, ErrorCode.UNKNOWN_MODEL, False),
        (408, ErrorCode.TIMEOUT, True),
        (413, ErrorCode.TOO_LARGE, False),
        (422, ErrorCode.INVALID_REQUEST, False),
        (429, ErrorCode.RATE_LIMITED, True),
        (500, ErrorCode.UPSTREAM_UNAVAILABLE, True),
        (502, ErrorCode.UPSTREAM_UNAVAILABLE, True),
        (503, ErrorCode.UPSTREAM_UNAVAILABLE, True),
        (504, ErrorCode.UPSTREAM_UNAVAILABLE, True),
        (418, ErrorCode.UPSTREAM_ERROR, False),
    ],
)
def test_each_status_maps_to_its_code(status: int, code: ErrorCode, retryable: bool) -> None:
    err = error_for_status(status, b'{"error": "boom"}', {"x-request-id": "req-42"})
    assert (err.code, err.retryable, err.status) == (code, retryable, status)
    assert f"HTTP {status}" in err.message and "boom" in err.message and "req-42" in err.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "Invalid username or password."}', "Invalid username or password."),
        (b'{"error": {"message": "model overloaded", "type": "server_error"}}', "model overloaded"),
        (b'{"detail": "field required"}', "field required"),
        (b'{"message": "not found"}', "not found"),
        (b'{"title": "Invalid version", "status": 422}', "Invalid version"),
        (b"plain text failure", "plain text failure"),
        (b"<html><body>Bad gateway</body></html>", ""),
        (b"", ""),
    ],
)
def test_error_bodies_in_every_provider_shape_give_their_message(body: bytes, message: str) -> None:
    assert upstream_message(body) == message


def test_retry_after_and_the_loading_estimate_are_read() -> None:
    assert error_for_status(429, b"{}", {"retry-after": "3"}).retry_after == 3.0
    loading = b'{"error":"Model X is currently loading","estimated_time": 20.0}'
    assert error_for_status(503, loading, {}).retry_after == 20.0
    assert error_for_status(503, b"{}", {}).retry_after is None


@pytest.mark.parametrize(
    ("event", "error_type", "code"),
    [
        ("Model is overloaded", "overloaded", ErrorCode.UPSTREAM_UNAVAILABLE),
        ("Input validation error", "validation", ErrorCode.INVALID_REQUEST),
        ("CUDA out of memory", "generation", ErrorCode.UPSTREAM_ERROR),
        ({"message": "bad request", "type": "invalid_request_error"}, None, ErrorCode.INVALID_REQUEST),
        ({"message": "internal"}, None, ErrorCode.UPSTREAM_ERROR),
    ],
)
def test_error_events_inside_a_stream_map_to_codes(event: object, error_type: str | None, code: ErrorCode) -> None:
    err = error_for_event(event, error_type)
    assert err.code == code
    assert "during the stream" in err.message
