"""One bus request made on behalf of an HTTP client, which may hang up at any moment.

The outputs are read by a task of the gateway's own task group, not by the HTTP handler: when the client
disconnects, aiohttp cancels the handler, the exchange publishes `cancel` at once (so the consumer closes the
upstream call and no more tokens are billed) and goes on reading until the request's final output arrives, so
the tokens that did run are still settled against the caller's key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from schemas import Error, ErrorCode, Result
from services.bus.handoff import Handoff
from services.client import BusTimeout, Stream

logger = logging.getLogger(__name__)

Settle = Callable[[Result | Error], Awaitable[None]]
"""Called once with the request's final output, whoever is still listening."""

CANCEL_SETTLE_S = 10.0
"""How long a hung-up exchange waits for the consumer's `cancelled` error (which carries the usage so far)."""

_BUFFER = 256


class Exchange:
    """Starts a bus request in the gateway's task group; iterate it for the outputs, and always end with
    `hang_up()` (in a `finally`): it cancels the request if it still runs and lets the reading go on unbuffered."""

    def __init__(self, stream: Stream[Any], settle: Settle) -> None:
        self.stream = stream
        self._settle = settle
        # A hand-off, not an anyio memory stream: that passes through the event loop on each send and receive,
        # twice per token.
        self._outputs: Handoff[Any] = Handoff(_BUFFER)
        self._final_seen = anyio.Event()
        self._reading = anyio.CancelScope()

    @property
    def id(self) -> str:
        return self.stream.id

    def start(self, tg: TaskGroup) -> Exchange:
        tg.start_soon(self._pump, name=f"gateway exchange {self.id}")
        return self

    async def outputs(self) -> AsyncIterator[Any]:
        """Chunks and progress, then the one final output (a `BusTimeout` becomes a `timeout` error)."""
        while (output := await self._outputs.get()) is not None:
            yield output

    async def hang_up(self) -> None:
        """The client is done or gone: cancel the bus request unless it already ended.

        Shielded, since it runs while the handler unwinds from the client's disconnect.
        """
        self._outputs.discard()
        if not self._final_seen.is_set():
            self._reading.deadline = anyio.current_time() + CANCEL_SETTLE_S
            with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                await self.stream.cancel()

    async def _pump(self) -> None:
        final: Result | Error | None = None
        outputs = self._outputs
        with self._reading:
            try:
                async for output in self.stream:
                    if isinstance(output, Result | Error):
                        final = output
                        self._final_seen.set()
                    # The handler reads until the final output or discards in `hang_up`, so this cannot hang;
                    # after a hang-up it returns at once and reading goes on for the final output's usage.
                    await outputs.put(output)
            except BusTimeout as exc:
                final = self._error(ErrorCode.TIMEOUT, str(exc))
                await outputs.put(final)
            except Exception:
                logger.exception("gateway exchange %s failed", self.id)
                final = self._error(ErrorCode.INTERNAL, "the gateway lost track of the request")
                await outputs.put(final)
            finally:
                outputs.close()
        if final is None:  # hung up and the consumer's `cancelled` never came: nothing known to bill
            final = self._error(ErrorCode.CANCELLED, "the client hung up")
        with anyio.CancelScope(shield=True):
            await self._settle(final)

    def _error(self, code: ErrorCode, message: str) -> Error:
        self._final_seen.set()
        return Error(id=self.id, seq=0, code=code, message=message, retryable=code == ErrorCode.TIMEOUT)
