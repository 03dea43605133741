"""A bounded first-in first-out hand-off of messages from a subscription to one consumer loop.

anyio's memory object stream does this too, but builds a task-info record (the task's name and coroutine,
through a generic alias) every time its receiver waits: in core intake that is once per request, and it cost
more than the rest of taking the request in. This is a deque and at most one waiting future on each side.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from anyio import WouldBlock
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

T = TypeVar("T")


class Handoff(Generic[T]):
    """`put_nowait` (one producer, inside a read loop) refuses past `capacity` items; `get` (one consumer) waits
    while there are none."""

    __slots__ = ("_capacity", "_closed", "_getter", "_items")

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._items: deque[T] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        """Items held, waiting for `get`."""
        return len(self._items)

    def put_nowait(self, item: T) -> bool:
        """Add `item` unless the hand-off is full (False: the caller decides what a refused item means)."""
        if len(self._items) >= self._capacity:
            return False
        self._items.append(item)
        _wake(self._getter)
        return True

    def get_nowait(self) -> T:
        """The oldest item; raises `anyio.WouldBlock` when there is none."""
        if not self._items:
            raise WouldBlock
        return self._items.popleft()

    async def get(self) -> T | None:
        """The oldest item; None once closed and empty. No pass through the event loop while items wait."""
        while not self._items:
            if self._closed:
                return None
            self._getter = asyncio.get_running_loop().create_future()
            await self._getter
        return self._items.popleft()

    def close(self) -> None:
        """No more items: a waiting `get` returns None once the held ones are taken."""
        self._closed = True
        _wake(self._getter)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _Dispatch:
    """Stands in for the future nats-py resolves for a one-reply subscription, once per message instead."""

    __slots__ = ("_deliver",)

    def __init__(self, deliver: Callable[[Msg], None]) -> None:
        self._deliver = deliver

    def cancelled(self) -> bool:
        return False

    def set_result(self, msg: Msg) -> None:
        self._deliver(msg)


async def subscribe_inline(nc: NATS, subject: str, deliver: Callable[[Msg], None], *, queue: str = "") -> Subscription:
    """Subscribe with `deliver` called inside nats-py's read loop, for each message as it is parsed.

    A callback subscription (`cb=`) hands each message to a task of its own through a queue: one more event-loop
    pass per message, which under load is milliseconds before a request starts or a reply is seen. nats-py's
    read loop resolves a subscription's `future` in place (its one-reply requests); this gives it an object
    that takes every message that way. `deliver` must not block or raise. Control messages (idle heartbeats,
    flow control) never reach it, as they never reach a callback; nats-py re-subscribes it after a reconnect
    like any other.
    """
    return await nc.subscribe(subject, queue=queue, future=cast(Any, _Dispatch(deliver)))
