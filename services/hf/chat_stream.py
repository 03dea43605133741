"""A streamed chat body read inside aiohttp's socket callback: no task wake-up, future or buffer copy per read.

Why: at 100 tokens/s per stream every token arrives in a socket read of its own, and reading it through
`response.content` costs a future, a task step, aiohttp's buffer bookkeeping and a resume-reading check per
read — more than parsing and publishing the token. Here the response's `StreamReader` is switched, for the
life of one stream, to a subclass whose `feed_data` hands each read straight to a `StreamFeed`: it splits the
server-sent events, folds them into a `ChatDelta` and pushes that into the caller's `DeltaSink` synchronously.
The request's task sleeps until the stream ends, fails, stalls, or the sink asks for a pause.

Everything else stays aiohttp's: connection pooling, TLS, the C HTTP parser (chunked framing, decompression),
connection-lost handling, and the release of a connection read to its end back to the pool (`feed_eof` still
runs the response's end-of-body callbacks). The switch only changes the class of a live `StreamReader` to a
slot-less subclass with the same layout, and is undone before the response is released.
"""

from __future__ import annotations

import asyncio
from collections import deque

import msgspec
from aiohttp import ClientResponse, StreamReader

from services.errors import ServiceError, UpstreamError, UpstreamUnavailable
from services.hf.answers import ChatDelta, DeltaSink, OnDelta
from services.hf.chat import fold_events
from services.hf.sse import SseDecoder

_FEEDS: dict[int, StreamFeed] = {}
"""Live feeds by `id()` of the reader they listen to: the subclass adds no slot to hold one."""


class _PushReader(StreamReader):
    """aiohttp's `StreamReader` that gives what the parser feeds to a `StreamFeed` instead of buffering it."""

    __slots__ = ()  # same layout as StreamReader: that is what lets `__class__` be switched on a live reader

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        feed = _FEEDS.get(id(self))
        if feed is None:  # pragma: no cover - the class is switched back before a feed is dropped
            return super().feed_data(data, size)
        feed.data(data)
        return False

    # Chunk boundaries matter only to `readchunk()`, which nobody calls on a pushed stream.
    def begin_http_chunk_receiving(self) -> None:
        return None

    def end_http_chunk_receiving(self) -> None:
        return None

    def feed_eof(self) -> None:
        super().feed_eof()  # runs the response's end-of-body callbacks: the connection goes back to the pool
        if (feed := _FEEDS.get(id(self))) is not None:
            feed.eof()

    def set_exception(self, exc: BaseException, *cause: BaseException) -> None:
        super().set_exception(exc, *cause)  # aiohttp's default for the cause is a private sentinel: passed as given
        if (feed := _FEEDS.get(id(self))) is not None:
            feed.lost(exc)


def _connection_failed(exc: BaseException) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"connection to the router failed ({type(exc).__name__})")


class StreamFeed:
    """One streamed response's parse state; its methods run inside the socket callback and never raise."""

    __slots__ = (
        "_loop",
        "_reader",
        "_sink",
        "_sse",
        "_waiter",
        "crash",
        "delivered",
        "done",
        "failure",
        "finished",
        "last_read",
        "over",
        "paused",
    )

    def __init__(self, sink: DeltaSink, delivered: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self._sse = SseDecoder()
        self._reader: StreamReader | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.delivered = delivered
        """True once a delta with output reached the sink: from then on a retry would show text twice."""
        self.finished = False
        """A `finish_reason` was seen: an end of body without `[DONE]` is then a complete answer."""
        self.done = False
        """`[DONE]` was seen; what follows until the end of the body is ignored."""
        self.over = False
        """The stream ended (well when `failure` is None)."""
        self.failure: ServiceError | None = None
        self.crash: Exception | None = None
        """What the sink raised, when it was not a `ServiceError`: the task re-raises it."""
        self.paused = False
        """The sink asked for a pause: reading is paused until the task has awaited `sink.drain()`."""
        self.last_read = self._loop.time()

    # -- the task's side ----------------------------------------------------------------------------------------

    async def attach(self, response: ClientResponse) -> None:
        """Take over the response body; what aiohttp had buffered already is fed at once."""
        reader = response.content
        if type(reader) is not StreamReader:
            # Not a streamed body (an empty or a custom payload): read it whole, then feed it as one piece.
            body = await response.read()
            self.data(body)
            self.eof()
            return
        if (exc := reader.exception()) is not None:
            self.lost(exc)
            return
        buffered = reader.read_nowait(-1)
        if reader.is_eof():
            # All of it came with the headers, and the connection is back in the pool already: feed it without
            # taking the reader (a pause must not stop a pooled connection's reading).
            self.data(buffered)
            self.eof()
            return
        self._reader = reader
        _FEEDS[id(reader)] = self
        reader.__class__ = _PushReader
        if buffered:
            self.data(buffered)

    def detach(self) -> None:
        """Give the reader back to aiohttp as it was, before the response is released or closed."""
        reader, self._reader = self._reader, None
        if reader is not None:
            del _FEEDS[id(reader)]
            reader.__class__ = StreamReader

    def wake_on_change(self) -> asyncio.Future[None]:
        """A future done when the stream ends or the sink asks for a pause."""
        waiter = self._waiter = self._loop.create_future()
        if self.over or self.paused:
            waiter.set_result(None)
        return waiter

    def resume(self) -> None:
        """The sink drained: read on (aiohttp's parser goes on with what it held back, in this call)."""
        self.paused = False
        if self._reader is not None and not self.over:
            self._reader._protocol.resume_reading()

    # -- the socket callback's side -----------------------------------------------------------------------------

    def data(self, data: bytes) -> None:
        if self.over or self.done:
            return  # after an error event or `[DONE]`: the rest is not read (the body is still drained to its end)
        self.last_read = self._loop.time()
        payloads = self._sse.feed(data)
        if not payloads:
            return
        try:
            delta, self.done, failure = fold_events(payloads)
        except msgspec.DecodeError:
            self._end(UpstreamError("the router sent a stream event that is not valid JSON"))
            return
        self._push(delta)
        if failure is not None:
            self._end(failure)

    def eof(self) -> None:
        if self.over:
            return
        if self.done:
            self._end(None)
            return
        try:
            tail, _, failure = fold_events(self._sse.close())
        except msgspec.DecodeError:
            self._end(UpstreamError("the router sent a stream event that is not valid JSON"))
            return
        if failure is not None:
            self._end(failure)
        elif tail.finish_reason is None and not self.finished:
            self._end(UpstreamUnavailable("the router closed the stream before the answer was complete"))
        else:
            self._push(tail)
            self._end(None)

    def lost(self, exc: BaseException) -> None:
        if not self.over:
            self._end(_connection_failed(exc))

    def _push(self, delta: ChatDelta) -> None:
        if delta.has_output:
            self.delivered = True
        if delta.finish_reason is not None:
            self.finished = True
        try:
            go_on = self._sink.push(delta)
        except ServiceError as err:
            self._end(err)
            return
        except Exception as exc:  # a broken sink ends this stream, not the parser of the connection
            self.crash = exc
            self._end(None)
            return
        if not go_on and not self.paused:
            self.paused = True
            if self._reader is not None and not self._reader.is_eof():
                # Not at the end of the body: by then the connection is back in the pool, and its reading is
                # the next response's business (aiohttp resumes it when that one is awaited).
                self._reader._protocol.pause_reading()
            self._wake()

    def _end(self, failure: ServiceError | None) -> None:
        self.over = True
        self.failure = failure
        self._wake()

    def _wake(self) -> None:
        _wake_up(self._waiter)


async def follow(
    response: ClientResponse, feed: StreamFeed, sink: DeltaSink, *, first_token_by: float, idle_s: float
) -> None:
    """Feed the response body to `sink` until it ends; raises its failure, or `Stalled` when data stops coming.

    Before the first delta with output the limit is `first_token_by` (a loop-clock reading); after it, `idle_s`
    since the last read. The task wakes only at the end, for a pause, or when a limit is reached with no read.
    """
    loop = asyncio.get_running_loop()
    try:
        await feed.attach(response)
        while True:
            waiter = feed.wake_on_change()
            if feed.paused:
                await sink.drain()
                feed.resume()
                continue
            if feed.over:
                break
            deadline = feed.last_read + idle_s if feed.delivered else first_token_by
            if deadline <= loop.time():
                raise Stalled(feed.delivered)
            # A timer that wakes the waiter, not a cancel scope: a scope costs about as much as reading a token.
            timer = loop.call_at(deadline, _wake_up, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
    finally:
        feed.detach()
    if feed.crash is not None:
        raise feed.crash
    if feed.failure is not None:
        raise feed.failure


class Stalled(Exception):
    """No data within the first-token or the idle limit; `delivered` tells which."""

    def __init__(self, delivered: bool) -> None:
        super().__init__("stalled")
        self.delivered = delivered


class CallbackSink:
    """An async `on_delta` as a `DeltaSink`: each read pauses the stream until the task has awaited the callback."""

    __slots__ = ("_on_delta", "_queued")

    def __init__(self, on_delta: OnDelta) -> None:
        self._on_delta = on_delta
        self._queued: deque[ChatDelta] = deque()

    def push(self, delta: ChatDelta) -> bool:
        self._queued.append(delta)
        return False

    async def drain(self) -> None:
        while self._queued:
            await self._on_delta(self._queued.popleft())


def _wake_up(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
