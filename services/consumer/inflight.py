"""Requests running in this process, by id, so `ai.cancel.<id>` can reach them."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio

from schemas.common import REQUEST_ID_MAX, REQUEST_ID_PATTERN
from services.bus.connection import Delivery
from services.errors import Cancelled, ServiceError

REMEMBERED_CANCELS = 10_000
"""Cancels of ids not running here are remembered (a request may not have started yet) up to this many, oldest
forgotten first: a flood of cancels for unknown ids costs at most this many short strings (about 2 MB)."""
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


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
        if len(request_id) > REQUEST_ID_MAX or _REQUEST_ID.fullmatch(request_id) is None:
            return False  # no request can have this id: nothing to cancel or remember
        entry = self.running.get(request_id)
        self._cancelled[request_id] = time.monotonic()
        self._cancelled.move_to_end(request_id)
        while len(self._cancelled) > REMEMBERED_CANCELS:
            self._cancelled.popitem(last=False)
        if entry is None:
            return False
        entry.reason = Cancelled("cancelled by request")
        entry.scope.cancel()
        return True

    @property
    def remembered(self) -> int:
        """How many cancels of ids not (yet) running are remembered."""
        return len(self._cancelled)

    def was_cancelled(self, request_id: str, window_s: float = 600.0) -> bool:
        at = self._cancelled.get(request_id)
        return at is not None and time.monotonic() - at < window_s
