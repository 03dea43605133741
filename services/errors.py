"""The service's error tree; each leaf knows the wire `ErrorCode` it becomes.

    ServiceError
    ├── InvalidRequest          invalid_request       the request itself is wrong; never retried
    ├── TooLarge                too_large
    ├── UnknownModel            unknown_model
    ├── Unauthorized            unauthorized          HF 401/403
    ├── PaymentRequired         payment_required      HF 402
    ├── RateLimited             rate_limited          HF 429 after our retries      (retryable)
    ├── UpstreamUnavailable     upstream_unavailable  HF 5xx / network after retries (retryable)
    ├── UpstreamError           upstream_error        any other upstream failure
    ├── UpstreamTimeout         timeout               also a builtin TimeoutError   (retryable)
    ├── Cancelled               cancelled             `ai.cancel.<id>` or shutdown
    └── Internal                internal              a bug: logged with its traceback

Messages name the offending field or upstream status and never carry a token or a header value.
"""

from __future__ import annotations

from typing import ClassVar

from schemas import ErrorCode


class ServiceError(Exception):
    """Base of every failure that ends a request with one `error` output."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        """The upstream HTTP status, when there was one."""
        self.retry_after = retry_after
        """Seconds the upstream asked us to wait (Retry-After, model-loading estimate)."""


class InvalidRequest(ServiceError):
    code = ErrorCode.INVALID_REQUEST


class TooLarge(ServiceError):
    code = ErrorCode.TOO_LARGE


class UnknownModel(ServiceError):
    code = ErrorCode.UNKNOWN_MODEL


class Unauthorized(ServiceError):
    code = ErrorCode.UNAUTHORIZED


class PaymentRequired(ServiceError):
    code = ErrorCode.PAYMENT_REQUIRED


class RateLimited(ServiceError):
    code = ErrorCode.RATE_LIMITED
    retryable = True


class UpstreamUnavailable(ServiceError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE
    retryable = True


class UpstreamError(ServiceError):
    code = ErrorCode.UPSTREAM_ERROR


class UpstreamTimeout(ServiceError, TimeoutError):
    code = ErrorCode.TIMEOUT
    retryable = True


class Cancelled(ServiceError):
    code = ErrorCode.CANCELLED


class Internal(ServiceError):
    code = ErrorCode.INTERNAL
