"""What the consumers report on `<prefix>.events.done.*`, kept in the gateway's memory for the console:
the last finished requests (the live tail), requests and errors per tag per minute over the last hour, and the
last time the HuggingFace token was refused (`unauthorized`) or out of credit (`payment_required`).

In memory, since this gateway started: every instance subscribes to every event (not a queue group), so any
instance the console reaches shows the same tail. Bounded: the tail keeps `TAIL` events, the counts 60 minutes.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from schemas import ErrorCode, Subjects, Tag
from schemas.operations import DoneEvent

logger = logging.getLogger(__name__)

TAIL = 500
MINUTES = 60
_NOT_ERRORS = frozenset({"ok", "handed_back", ErrorCode.CANCELLED.value})
"""Outcomes that are not the service failing: a success, a durable hand-over, a caller hanging up."""
_WATCHED = (ErrorCode.UNAUTHORIZED.value, ErrorCode.PAYMENT_REQUIRED.value)
_decoder = msgspec.json.Decoder(DoneEvent)


class Activity:
    def __init__(self, *, clock: Any = time.time) -> None:
        self._clock = clock
        self._tail: deque[tuple[int, DoneEvent]] = deque(maxlen=TAIL)
        self._seq = 0
        # minute (unix seconds // 60) -> tag -> [requests, errors]
        self._minutes: dict[int, dict[str, list[int]]] = {}
        self.last_refusals: dict[str, dict[str, Any]] = {}
        """`unauthorized` / `payment_required` -> when, where and which request last met it."""
        self._subscription: Subscription | None = None

    async def start(self, nc: NATS, subjects: Subjects) -> None:
        self._subscription = await nc.subscribe(subjects.events_done_all, cb=self._on_event)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = _decoder.decode(msg.data)
        except msgspec.DecodeError:
            logger.debug("an unreadable done event on %s", msg.subject)
            return
        self.add(event)

    def add(self, event: DoneEvent) -> None:
        self._seq += 1
        self._tail.append((self._seq, event))
        minute = int(event.at // 60)
        counts = self._minutes.setdefault(minute, {}).setdefault(str(event.tag), [0, 0])
        counts[0] += 1
        if event.outcome not in _NOT_ERRORS:
            counts[1] += 1
        if event.outcome in _WATCHED:
            self.note_refusal(event.outcome, at=event.at, source=f"{event.tag} request {event.id}", model=event.model)
        oldest = int(self._clock() // 60) - MINUTES
        for stale in [m for m in self._minutes if m <= oldest]:
            del self._minutes[stale]

    def note_refusal(self, code: str, *, at: float, source: str, model: str | None = None) -> None:
        """Remember that HuggingFace refused the token (`unauthorized`) or wanted payment, and where."""
        known = self.last_refusals.get(code)
        if known is None or known["at"] <= at:
            self.last_refusals[code] = {"at": at, "source": source, "model": model}

    def tail(self, after: int = 0, limit: int = 200) -> dict[str, Any]:
        """Events newer than `after` (a `last` of an earlier answer), oldest first, at most `limit`."""
        newer = [(seq, e) for seq, e in self._tail if seq > after][-limit:]
        return {"last": self._seq, "events": [{"seq": seq, **msgspec.to_builtins(e)} for seq, e in newer]}

    def hour(self) -> dict[str, Any]:
        """Requests and errors per tag for each of the last 60 minutes (oldest first), and their sums."""
        now = int(self._clock() // 60)
        minutes = list(range(now - MINUTES + 1, now + 1))
        tags: dict[str, dict[str, Any]] = {}
        for index, minute in enumerate(minutes):
            for tag, (requests, errors) in self._minutes.get(minute, {}).items():
                row = tags.setdefault(tag, {"requests": [0] * MINUTES, "errors": [0] * MINUTES})
                row["requests"][index] += requests
                row["errors"][index] += errors
        ordered = {str(t): tags[str(t)] for t in Tag if str(t) in tags}
        return {
            "minutes": [m * 60 for m in minutes],
            "tags": ordered,
            "totals": {t: {"requests": sum(v["requests"]), "errors": sum(v["errors"])} for t, v in ordered.items()},
        }
