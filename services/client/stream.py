"""One request's outputs as a publisher sees them: iterate them, or await `.result()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any, Generic, Literal, Protocol, TypeVar

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import BadSubscriptionError, ConnectionClosedError, ConnectionDrainingError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy

from schemas import (
    ChatResult,
    Error,
    Progress,
    RequestBase,
    Result,
    Subjects,
    Tag,
)
from schemas.codec import JSON_CODEC
from services.bus.handoff import Handoff, subscribe_inline

Mode = Literal["core", "durable"]
R = TypeVar("R", bound=Result)
OnProgress = Callable[[Progress], Awaitable[None] | None]


class Publisher(Protocol):
    """What a stream needs from the bus connection that sent its request (`HfBus`)."""

    nc: NATS
    subjects: Subjects
    mode: Mode

    async def _send(self, tag: Tag, request: RequestBase, inbox: str | None) -> int | None: ...

    async def final(self, tag: Tag, request_id: str, *, request_seq: int | None = None) -> Any | None: ...


RESUME_HEARTBEAT_S = 1.0
"""A resumable stream's consumer heartbeat: two missed ones (a reconnect, a dropped message) and it resumes."""

FINAL_RECHECK_S = 2.0
"""After this much silence a durable-mode stream checks whether its final output was kept while it was away."""

INBOX_CAPACITY = 65_536
"""Outputs an inbox holds for a reader that does not keep up; beyond it they are dropped, as nats-py drops a slow
subscription's messages (a durable-mode stream still finds its final output kept)."""


class BusTimeout(TimeoutError):
    """No output arrived within the wait; the request may still be running."""


class BusUnreachable(ConnectionError):
    """No NATS server of the given URL answered within the connect wait."""


class NoConsumer(ConnectionError):
    """Core mode: nothing subscribes to the request's subject, so no consumer of its tag is running."""


class RequestFailed(RuntimeError):
    """The request ended with an `error` output; `.error` has its code, message and upstream status."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class Stream(Generic[R]):
    """The outputs of one request, in order; iterate it once, or await `result()`."""

    def __init__(
        self,
        bus: Publisher,
        tag: Tag,
        request: RequestBase,
        output_type: Any,
        *,
        first_timeout: float,
        idle_timeout: float,
        on_progress: OnProgress | None = None,
    ) -> None:
        self.request = request
        self.result_value: R | None = None
        self.error: Error | None = None
        self._bus = bus
        self._tag = tag
        self._output_type = output_type
        self._first_timeout = first_timeout
        self._idle_timeout = idle_timeout
        self._on_progress = on_progress
        self._request_seq: int | None = None
        """Where JetStream stored the request (durable mode): the kept final must answer this message."""
        self._subscription: Subscription
        """Where outputs come from: the request's inbox, or (resumable) an ordered consumer of the out stream."""
        self._inbox: Handoff[Msg] | None = None
        """The inbox's messages, taken inside nats-py's read loop (None for a resumable stream)."""
        self._attempt = 1
        self._last_seq = -1
        """The attempt being followed and the last `seq` of it yielded: what comes again is skipped."""
        self._held: Any = None
        """A resumable stream's first output after a hole, not taken: the ones before it come first."""
        self._reread_for: tuple[int, int] | None = None
        """(attempt, seq) of the output after a hole that made a resumable stream read its kept outputs again."""

    @property
    def id(self) -> str:
        return self.request.id

    async def cancel(self) -> None:
        """Ask the consumer running this request to stop it; it answers with a `cancelled` error."""
        await self._bus.nc.publish(self._bus.subjects.cancel(self.id), b"")

    async def __aiter__(self) -> AsyncIterator[Any]:
        subscription, inbox = await self._subscribe()
        self._subscription = subscription
        try:
            self._request_seq = await self._bus._send(self._tag, self.request, inbox)
            timeout = self._first_timeout
            while True:
                output, forced = await self._next(timeout)
                timeout = self._idle_timeout
                final = isinstance(output, Result | Error)
                attempt, last_seq = self._attempt, self._last_seq
                if output.attempt < attempt and not final:
                    continue  # a late chunk of an attempt that was already superseded
                if output.attempt == attempt and output.seq <= last_seq and not final:
                    continue  # seen already: a replay that overlapped what arrived live
                if self.request.resumable and not forced:
                    expected = last_seq + 1 if output.attempt == attempt else 0
                    if output.attempt >= attempt and output.seq != expected:
                        # A hole: the outputs before this one are kept, further on in the out stream (published
                        # again after a reconnect) or at its start (read again after a silence; see `_next`).
                        if self._held is None:
                            self._held = output
                        continue
                # Progress: a later hole, or this one again, is worth another read of the kept outputs.
                self._held = self._reread_for = None
                # A request has one final output, whichever attempt wrote it: an earlier attempt that was still
                # running when the request was redelivered may finish first, and then the later one stays silent.
                if output.attempt > attempt:
                    self._attempt, self._last_seq = output.attempt, -1
                if output.attempt == self._attempt:
                    self._last_seq = output.seq
                if isinstance(output, Progress) and self._on_progress is not None:
                    if (pending := self._on_progress(output)) is not None:
                        await pending
                if isinstance(output, Error):
                    self.error = output
                elif isinstance(output, Result):
                    self.result_value = output  # type: ignore[assignment]
                if final:
                    # Callers often stop iterating at the final output and then close the connection: let go of
                    # the inbox now, while the connection is still open, rather than when the generator is collected.
                    await _release(self._subscription)
                    yield output
                    return
                yield output
        finally:
            await _release(self._subscription)

    async def _subscribe(self) -> tuple[Subscription, str | None]:
        """Where the outputs will come from: the request's own inbox, or (resumable) the stream that keeps them.

        A resumable request's outputs are read through an ordered consumer of `<prefix>.out.<tag>.<id>`: it
        delivers what the stream kept and then what is published, and after a reconnect it resumes after the
        last stream sequence it delivered, so nothing is missed and nothing comes twice.
        """
        nc, subjects = self._bus.nc, self._bus.subjects
        if self.request.resumable:
            subscription = await nc.jetstream().subscribe(
                subjects.out(self._tag, self.id),
                stream=subjects.out_stream,
                ordered_consumer=True,
                idle_heartbeat=RESUME_HEARTBEAT_S,
                deliver_policy=DeliverPolicy.ALL,
            )
            return subscription, None
        # The inbox is read inside nats-py's read loop (`subscribe_inline`): `next_msg` makes a task and a
        # `wait_for` per message, which cost more than the rest of taking a token in.
        inbox = nc.new_inbox()
        received: Handoff[Msg] = Handoff(INBOX_CAPACITY)
        self._inbox = received
        return await subscribe_inline(nc, inbox, received.put_nowait, on_close=received.close), inbox

    async def _receive(self, wait_s: float) -> Msg:
        """The next message; nats-py's `TimeoutError` when none came within `wait_s`."""
        received = self._inbox
        if received is None:
            return await self._subscription.next_msg(timeout=wait_s)
        # A closing connection closes the hand-off (`on_close`), so `wait` returns at once then.
        if not (len(received) or await received.wait(wait_s)):
            raise ConnectionClosedError if self._bus.nc.is_closed else NatsTimeoutError
        return received.get_nowait()

    async def _next(self, wait_s: float) -> tuple[Any, bool]:
        """The next output; in durable mode, a final output that was kept while this connection was away. True
        with it: take it even though outputs before it are missing (a resumable stream's hole nothing fills).

        Outputs are plain NATS messages: one sent while the connection was reconnecting is gone. Durable mode
        also keeps each final output in a stream, so after a silence the client looks there before waiting on.
        """
        now = asyncio.get_running_loop().time  # anyio's `current_time` looks up the backend on every call
        deadline = now() + wait_s
        while True:
            left = deadline - now()
            if left <= 0:
                raise BusTimeout(f"no output for request {self.id} within {wait_s:g}s")
            silence = self._bus.mode == "durable" or self.request.resumable
            wait = min(left, FINAL_RECHECK_S) if silence else left
            try:
                msg = await self._receive(wait)
            except NatsTimeoutError:
                kept = await self._bus.final(self._tag, self.id, request_seq=self._request_seq)
                if not self.request.resumable:
                    if kept is not None:
                        return kept, False
                    continue
                if kept is not None and kept.attempt == self._attempt and kept.seq == self._last_seq + 1:
                    return kept, False  # nothing in between: the kept final is the very next output
                if (hole := kept or self._held) is not None and await self._read_again(hole):
                    return hole, True
                continue
            if not msg.data and msg.headers and msg.headers.get("Status") == "503":
                # The server's "no responders": nobody subscribes to the request subject (core mode).
                raise NoConsumer(f"no consumer serves {self._bus.subjects.request(self._tag)} (is `hfbus run` up?)")
            try:
                output = JSON_CODEC.decode(msg.data, self._output_type)
            except msgspec.ValidationError:
                if _is_publish_ack(msg.data):
                    # A core-mode client against a deployment whose stream stores the request: JetStream
                    # acknowledges to the reply inbox, and the answer follows through `reply_to`.
                    continue
                raise
            if output.id != self.id:
                continue  # not this request's: whoever sent it, it must not end or feed this stream
            return output, False

    async def _read_again(self, hole: Any) -> bool:
        """After a silence with outputs missing before `hole` (a held output, or the kept final): read the kept
        outputs again from the start, skipping what was seen; True when that was done for this hole already and
        brought nothing, so the stream takes `hole` with the gap (what is lost for good: a memory out stream
        lost with its server).

        A resumable stream's missed outputs are kept in the out stream: the ordered consumer resumes after the
        last stream sequence it saw, but a server that crashed may have lost its last messages and numbered
        new ones from there, and a consumer that reconnected publishes what the stream lacked after what it had.
        """
        key = (hole.attempt, hole.seq)
        if self._reread_for == key:
            return True
        try:
            subscription, _ = await self._subscribe()
        except (nats.errors.Error, TimeoutError):
            return False  # JetStream still away: look again after the next silence
        await _release(self._subscription)
        self._subscription = subscription
        self._reread_for = key
        return False

    async def result(self) -> R:
        """Run to the end; the result, or `RequestFailed` carrying the error."""
        async for _ in self:
            pass
        if self.error is not None:
            raise RequestFailed(self.error)
        assert self.result_value is not None
        return self.result_value


async def _release(subscription: Subscription) -> None:
    """Drop interest in a reply inbox; a closed or draining connection, or an earlier release, already did."""
    with suppress(BadSubscriptionError, ConnectionClosedError, ConnectionDrainingError):
        await subscription.unsubscribe()


class ChatStream(Stream[ChatResult]):
    """A chat's outputs: chunks, then the result."""

    async def text(self) -> str:
        """The whole answer; `RequestFailed` on an error."""
        return (await self.result()).text


def _is_publish_ack(data: bytes) -> bool:
    try:
        reply = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return False
    return isinstance(reply, dict) and "stream" in reply and "seq" in reply and "type" not in reply
