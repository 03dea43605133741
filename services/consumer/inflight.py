"""Requests running in this process, by id, so `ai.cancel.<id>` can reach them."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio

from services.bus.connection import Delivery
from services.errors import Cancelled, ServiceError


@dataclass(slots=True)
class Running:
    scope: anyio.CancelScope
    delivery: Delivery
    reason: ServiceError | None = None
    """Why the scope was cancelled from outside: set before cancelling."""


@dataclass(slots=True)
class InFlight:
    """Requests running in this process, by id, so `ai.cancel.<id>` can reach them."""

    running: dict[str, Running] = field(default_factory=dict)
    _cancelled: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def cancel(self, request_id: str) -> bool:
        """Cancel a running request, or remember the id for a while in case it has not started yet."""
        entry = self.running.get(request_id)
        self._cancelled[request_id] = time.monotonic()
        while len(self._cancelled) > 10_000:
            self._cancelled.popitem(last=False)
        if entry is None:
            return False
        entry.reason = Cancelled("cancelled by request")
        entry.scope.cancel()
        return True

    def was_cancelled(self, request_id: str, window_s: float = 600.0) -> bool:
        at = self._cancelled.get(request_id)
        return at is not None and time.monotonic() - at < window_s
