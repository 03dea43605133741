"""A bounded first-in first-out hand-off between one producer and one consumer loop.

anyio's memory object stream does this too, but builds a task-info record (the task's name and coroutine,
through a generic alias) every time its receiver waits, and passes through the event loop on every send and
receive: in core intake that cost more than the rest of taking the request in, and in the gateway it was paid
on each token twice. This is a deque and at most one waiting future on each side.
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
    """One producer, one consumer. `put_nowait` (inside a read loop) refuses past `capacity` items, `put` (a
    task) waits for room; `get` waits while there are none."""

    __slots__ = ("_capacity", "_closed", "_discarded", "_getter", "_items", "_putter")

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._items: deque[T] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None
        self._closed = False
        self._discarded = False

    def __len__(self) -> int:
        """Items held, waiting for `get`."""
        return len(self._items)

    def put_nowait(self, item: T) -> bool:
        """Add `item` unless the hand-off is full (False: the caller decides what a refused item means)."""
        if len(self._items) >= self._capacity or self._discarded:
            return False
        self._items.append(item)
        _wake(self._getter)
        return True

    async def put(self, item: T) -> bool:
        """Add `item`, waiting while the hand-off is full; False (and `item` dropped) once `discard` was called."""
        while len(self._items) >= self._capacity and not self._discarded:
            self._putter = asyncio.get_running_loop().create_future()
            await self._putter
        if self._discarded:
            return False
        self._items.append(item)
        _wake(self._getter)
        return True

    def get_nowait(self) -> T:
        """The oldest item; raises `anyio.WouldBlock` when there is none."""
        if not self._items:
            raise WouldBlock
        _wake(self._putter)
        return self._items.popleft()

    async def get(self) -> T | None:
        """The oldest item; None once closed and empty. No pass through the event loop while items wait."""
        while not self._items:
            if self._closed:
                return None
            self._getter = asyncio.get_running_loop().create_future()
            await self._getter
        return self.get_nowait()

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for an item; True when one is there (take it with `get_nowait`)."""
        if self._items:
            return True
        if self._closed:
            return False
        loop = asyncio.get_running_loop()
        getter = self._getter = loop.create_future()
        # A timer that resolves the waiter, not `wait_for`: that makes a task per wait.
        timer = loop.call_later(timeout_s, _wake, getter)
        try:
            await getter
        finally:
            timer.cancel()
        return bool(self._items)

    def discard(self) -> None:
        """The consumer is gone: what is held is dropped, and `put` refuses from now on."""
        self._discarded = True
        self._items.clear()
        _wake(self._putter)

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

    def __init__(self, deliver: Callable[[Msg], object]) -> None:
        self._deliver = deliver

    def cancelled(self) -> bool:
        return False

    def set_result(self, msg: Msg) -> None:
        self._deliver(msg)


class _OnClose:
    """Stands in for a pending `next_msg` call, which nats-py cancels when the connection closes."""

    __slots__ = ("_on_close",)

    def __init__(self, on_close: Callable[[], object]) -> None:
        self._on_close = on_close

    def cancel(self) -> bool:
        self._on_close()
        return True


async def subscribe_inline(
    nc: NATS,
    subject: str,
    deliver: Callable[[Msg], object],
    *,
    queue: str = "",
    on_close: Callable[[], object] | None = None,
) -> Subscription:
    """Subscribe with `deliver` called inside nats-py's read loop, for each message as it is parsed.

    A callback subscription (`cb=`) hands each message to a task of its own through a queue: one more event-loop
    pass per message, which under load is milliseconds before a request starts or a reply is seen. nats-py's
    read loop resolves a subscription's `future` in place (its one-reply requests); this gives it an object
    that takes every message that way. `deliver` must not block or raise. Control messages (idle heartbeats,
    flow control) never reach it, as they never reach a callback; nats-py re-subscribes it after a reconnect
    like any other. What `deliver` returns is ignored. `on_close` runs when the connection closes for good
    (nats-py then cancels a subscription's waiting `next_msg` calls: it is registered as one), so a reader
    waiting on what `deliver` hands over is told at once instead of at its timeout.
    """
    subscription = await nc.subscribe(subject, queue=queue, future=cast(Any, _Dispatch(deliver)))
    if on_close is not None and subscription._pending_next_msgs_calls is not None:
        subscription._pending_next_msgs_calls["hfbus-on-close"] = cast(Any, _OnClose(on_close))
    return subscription
