"""A TCP link between a client and the nats-server that a test can cut, as a flaky network or a load balancer
restart would: every open connection through it is closed at once, and new ones are refused until it is mended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.lowlevel
from anyio.abc import SocketStream, TaskGroup


class Link:
    def __init__(self, upstream_port: int) -> None:
        self.port = 0
        self.cuts = 0
        self._upstream_port = upstream_port
        self._open: set[SocketStream] = set()
        self._down = False

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def cut(self) -> None:
        """Close every connection through the link and refuse new ones until `mend()`."""
        self._down = True
        self.cuts += 1
        for stream in list(self._open):
            with suppress(Exception):
                await stream.aclose()
        await anyio.lowlevel.checkpoint()  # let the pipes see their ends closed

    def mend(self) -> None:
        self._down = False

    async def _serve(self, client: SocketStream) -> None:
        if self._down:
            await client.aclose()
            return
        server = await anyio.connect_tcp("127.0.0.1", self._upstream_port)
        self._open |= {client, server}
        try:
            async with anyio.create_task_group() as pipes:
                pipes.start_soon(self._pipe, client, server, pipes)
                pipes.start_soon(self._pipe, server, client, pipes)
        finally:
            self._open -= {client, server}
            with anyio.CancelScope(shield=True):
                for stream in (client, server):
                    with suppress(Exception):
                        await stream.aclose()

    @staticmethod
    async def _pipe(source: SocketStream, sink: SocketStream, pipes: TaskGroup) -> None:
        try:
            async for data in source:
                await sink.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            pass
        pipes.cancel_scope.cancel()


@asynccontextmanager
async def link_to(upstream_port: int) -> AsyncIterator[Link]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        link = Link(upstream_port)
        link.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, link._serve)
        try:
            yield link
        finally:
            tg.cancel_scope.cancel()
