"""Request tasks at asyncio's price, cancelled at shutdown as an anyio task group would cancel them.

anyio's `TaskGroup.start_soon` wraps every task in a `TaskHandle` with a cancel scope and an event of its own
and keeps the group's books in a done-callback: about 45 µs a task on the bench machine, more than the
consumer's own work for a one-token chat (the hand-rolled consumer spawns plain asyncio tasks). Here each
request runs in a plain task inside one anyio cancel scope, which keeps what the task group gave: a
cancellation that respects shielded sections (a final output being kept), delivered at the shutdown deadline
or when the serving task itself is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import anyio


class Workers:
    """The running request tasks of one tag; `close()` must follow (a `finally`), so that none outlives it."""

    def __init__(self) -> None:
        self._running: dict[asyncio.Task[None], anyio.CancelScope] = {}

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in a task of its own; it must handle its own errors (what escapes is only logged by
        asyncio)."""
        scope = anyio.CancelScope()
        task = asyncio.get_running_loop().create_task(_within(scope, work))
        self._running[task] = scope
        task.add_done_callback(self._running.pop)

    async def wait(self, grace_s: float) -> None:
        """Wait up to `grace_s` seconds for every task to end (`close()` then ends the rest)."""
        if self._running:
            with anyio.move_on_after(grace_s):
                await asyncio.wait(list(self._running))

    async def close(self) -> None:
        """Cancel what still runs (shielded sections finish first) and wait until it has ended."""
        for scope in self._running.values():
            scope.cancel()
        with anyio.CancelScope(shield=True):
            while self._running:
                await asyncio.wait(list(self._running))


async def _within(scope: anyio.CancelScope, work: Coroutine[Any, Any, None]) -> None:
    with scope:
        await work
