"""Failures an adapter reports; each is also the `ServiceError` leaf the runtime turns into the wire code.

    ProviderError                                 any failure raised by an adapter or the registry
    ├── ProviderJobFailed      (UpstreamError)    the provider says the job failed; carries its message
    ├── ProviderReplyInvalid   (UpstreamError)    a 2xx reply we cannot read, or a job that never finished
    ├── UnsupportedInput       (InvalidRequest)   an input this provider cannot take; names the field
    └── NoAdapter              (UnknownModel)     no adapter for that provider and task

HTTP statuses are not mapped here: the executor does that before `parse` sees a reply.
"""

from __future__ import annotations

from services.errors import InvalidRequest, UnknownModel, UpstreamError


class ProviderError(Exception):
    """Marker base of everything this package raises."""


class ProviderJobFailed(UpstreamError, ProviderError):
    """A queued or synchronous job ended in the provider's failed/error state."""


class ProviderReplyInvalid(UpstreamError, ProviderError):
    """A 2xx reply that does not have the shape the provider documents."""


class UnsupportedInput(InvalidRequest, ProviderError):
    """The request is well-formed but this provider cannot take one of its inputs."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NoAdapter(UnknownModel, ProviderError, LookupError):
    """The provider does not serve that task (or is unknown); the message names the providers that do."""
