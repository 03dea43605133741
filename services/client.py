"""The publisher side: `async with HfBus.connect(url) as bus: async for event in bus.chat(messages): ...`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError

from schemas import ChatMessage, ChatOutput, ChatRequest, ChatResult, Chunk, Error, Subjects, Tag
from schemas.codec import JSON_CODEC
from schemas.subjects import MSG_ID

Mode = Literal["core", "durable"]
MessageLike = ChatMessage | dict[str, Any]


class BusTimeout(TimeoutError):
    """No output arrived within the wait; the request may still be running."""


class ChatStream:
    """The outputs of one chat request, in order; iterate it once. `cancel()` stops the upstream call."""

    def __init__(self, bus: HfBus, request: ChatRequest, tag: Tag, first_timeout: float, idle_timeout: float) -> None:
        self.request = request
        self._bus = bus
        self._tag = tag
        self._first_timeout = first_timeout
        self._idle_timeout = idle_timeout
        self.result: ChatResult | None = None
        self.error: Error | None = None

    @property
    def id(self) -> str:
        return self.request.id

    async def cancel(self) -> None:
        """Ask the consumer running this request to stop it; it answers with a `cancelled` error."""
        await self._bus.nc.publish(self._bus.subjects.cancel(self.id), b"")

    async def __aiter__(self) -> AsyncIterator[ChatOutput]:
        nc = self._bus.nc
        inbox = nc.new_inbox()
        subscription = await nc.subscribe(inbox)
        try:
            await self._bus._send(self._tag, self.request, inbox)
            attempt = 1
            timeout = self._first_timeout
            while True:
                try:
                    msg = await subscription.next_msg(timeout=timeout)
                except NatsTimeoutError:
                    raise BusTimeout(f"no output for request {self.id} within {timeout:g}s") from None
                timeout = self._idle_timeout
                output = JSON_CODEC.decode(msg.data, ChatOutput)
                if output.attempt < attempt:
                    continue  # a late output of an attempt that was already superseded
                attempt = output.attempt
                yield output
                if isinstance(output, ChatResult):
                    self.result = output
                    return
                if isinstance(output, Error):
                    self.error = output
                    return
        finally:
            await subscription.unsubscribe()

    async def text(self) -> str:
        """Wait for the whole answer; raise `RuntimeError` with the error's code and message on failure."""
        async for output in self:
            if isinstance(output, Chunk) and output.seq == 0:
                pass
        if self.error is not None:
            raise RuntimeError(f"{self.error.code}: {self.error.message}")
        assert self.result is not None
        return self.result.text


class HfBus:
    """A connection to hfbus; publishes requests in whichever mode the deployment runs."""

    def __init__(self, nc: NATS, subjects: Subjects, mode: Mode) -> None:
        self.nc = nc
        self.subjects = subjects
        self.mode = mode

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str = "nats://127.0.0.1:4222", *, prefix: str = "ai", mode: Mode | None = None, **options: Any
    ) -> AsyncIterator[HfBus]:
        """Connect; without `mode`, durable when a JetStream stream captures the request subjects."""
        nc = await nats.connect(url, **options)
        try:
            subjects = Subjects(prefix)
            yield cls(nc, subjects, mode or await _detect_mode(nc, subjects))
        finally:
            await nc.drain()

    def chat(
        self,
        messages: str | Sequence[MessageLike],
        *,
        model: str | None = None,
        stream: bool = True,
        request_id: str | None = None,
        vision: bool = False,
        first_timeout: float = 120.0,
        idle_timeout: float = 60.0,
        **options: Any,
    ) -> ChatStream:
        """Start a chat (`vision=True` sends it to `pic2text`); a plain string is one user message."""
        if isinstance(messages, str):
            messages = [ChatMessage(role="user", content=messages)]
        typed = [m if isinstance(m, ChatMessage) else msgspec.convert(m, ChatMessage) for m in messages]
        request = ChatRequest(id=request_id or uuid.uuid4().hex, model=model, messages=typed, stream=stream, **options)
        tag = Tag.PIC2TEXT if vision else Tag.CHAT
        return ChatStream(self, request, tag, first_timeout, idle_timeout)

    async def _send(self, tag: Tag, request: ChatRequest, inbox: str) -> None:
        subject = self.subjects.request(tag)
        if self.mode == "durable":
            # A stored request keeps no NATS reply subject, so the inbox travels in the body.
            payload = JSON_CODEC.encode(msgspec.structs.replace(request, reply_to=inbox))
            await self.nc.jetstream().publish(subject, payload, headers={MSG_ID: request.id})
        else:
            await self.nc.publish(subject, JSON_CODEC.encode(request), reply=inbox)


async def _detect_mode(nc: NATS, subjects: Subjects) -> Mode:
    try:
        await nc.jetstream().find_stream_name_by_subject(subjects.request(Tag.CHAT))
    except Exception:  # no JetStream, or no stream for our subjects: core mode
        return "core"
    return "durable"
