"""The load generator's clients: one per system, all driven from the bench's single asyncio process.

Per-token work is kept to a dict lookup, a timestamp on the first output and a prefix check for "is this the
final message"; only the final message of a request is decoded (orjson), so the loader's cost per token stays
far below a consumer's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
import nats
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

Wire = Literal["hfbus", "lean", "faststream"]

SUBJECT = "ai.chat"
OUT_PREFIX = "ai.out.chat."
"""Where a resumable chat's outputs go when it names no reply subject (`Subjects.out`), kept by HFBUS_OUT."""
MODEL = "bench/model"
"""An HF-style id (owner/name): hfbus resolves it without a catalog entry; the other systems pass it through."""
MESSAGES = [{"role": "user", "content": "hi"}]
TOKEN = "hf_bench"
VECTORIZE_SUBJECT = "ai.vectorize"
EMBED_MODEL = "intfloat/multilingual-e5-large"
"""An embedding model the fake router's Hub maps to hf-inference feature-extraction (1,024 dimensions)."""

now = time.monotonic
"""The one clock of the bench (the event loop's too), so timestamps and deadlines compare directly."""


@dataclass(slots=True)
class Sample:
    """One request as the loader saw it; times are `now()` readings, `first` is 0 when nothing arrived."""

    started: float
    first: float
    ended: float
    tokens: int
    messages: int
    error: str | None
    max_gap: float = 0.0
    """Longest wait between two consecutive outputs (bus) or reads (direct) of the stream, in seconds."""

    @property
    def ttft(self) -> float:
        return self.first - self.started


class Target(Protocol):
    """A system under test as the scenarios drive it."""

    name: str

    async def request(self, max_tokens: int, deadline: float) -> Sample:
        """Send one streamed chat request and wait for its end, at most until `deadline` (a `now()` reading)."""
        ...


class _Pending:
    __slots__ = ("first", "future", "last", "max_gap", "messages")

    def __init__(self, future: asyncio.Future[bytes]) -> None:
        self.future = future
        self.first = 0.0
        self.last = 0.0
        self.max_gap = 0.0
        self.messages = 0


def _final_typed(data: bytes) -> bool:
    # hfbus (msgspec) and the FastStream baseline both put `"type"` first; only chunks are not final.
    return data.find(b'"chunk"', 0, 24) < 0


def _final_lean(data: bytes) -> bool:
    return b'"done":true' in data


def _parse_typed(data: bytes) -> tuple[int, str | None]:
    out = orjson.loads(data)
    kind = out.get("type")
    if kind == "result":
        return int((out.get("usage") or {}).get("completion_tokens", 0)), None
    if kind == "error":
        return 0, f"{out.get('code', 'error')}: {out.get('message', '')}"[:200]
    return 0, f"unexpected final output type {kind!r}"


def _parse_lean(data: bytes) -> tuple[int, str | None]:
    out = orjson.loads(data)
    if out.get("error"):
        return 0, str(out["error"])[:200]
    # The anchor sends one chunk per token and its closing message carries the next seq: the token count.
    return int(out.get("seq", 0)), None


class BusTarget:
    """A consumer reached over NATS: core request/reply, or a JetStream publish with `reply_to` (durable).

    `resumable` (durable only): requests carry `"resumable": true` and no `reply_to`, as `HfBus.chat(...,
    resumable=True)` sends them, so the consumer publishes each output once, to `ai.out.chat.<id>`, where
    HFBUS_OUT keeps it. The loader reads those subjects live through one wildcard subscription, not through an
    ordered consumer per request as `HfBus` does: the consumer's work (what the target is about) is the same
    either way, and a JetStream consumer created and deleted per request would make this single Python loader,
    not the system under test, the bottleneck. The server's cost of feeding per-request ordered consumers is
    therefore not in the `nats` figures of this system.
    """

    def __init__(self, name: str, nc: NATS, wire: Wire, *, durable: bool = False, resumable: bool = False) -> None:
        self.name = name
        self._nc = nc
        self._wire = wire
        self._durable = durable
        self._resumable = resumable
        self._subject = SUBJECT
        self._js: JetStreamContext | None = nc.jetstream() if durable else None
        self._inbox_prefix = f"_INBOX.bench{uuid.uuid4().hex[:12]}."
        self._id_prefix = uuid.uuid4().hex[:12]
        self._counter = 0
        self._pending: dict[str, _Pending] = {}
        self._is_final: Callable[[bytes], bool] = _final_lean if wire == "lean" else _final_typed
        self._parse: Callable[[bytes], tuple[int, str | None]] = _parse_lean if wire == "lean" else _parse_typed

    async def start(self) -> None:
        # One wildcard subscription for every reply: a SUB/UNSUB pair per request would cost more than the request.
        subject = OUT_PREFIX + "*" if self._resumable else self._inbox_prefix + "*"
        await self._nc.subscribe(subject, cb=self._on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
        await self._nc.flush()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def _on_msg(self, msg: Msg) -> None:
        pending = self._pending.get(msg.subject)
        if pending is None:
            return  # a late output of a request the loader gave up on
        arrived = now()
        if pending.first == 0.0:
            pending.first = arrived
        elif arrived - pending.last > pending.max_gap:
            pending.max_gap = arrived - pending.last
        pending.last = arrived
        pending.messages += 1
        data = msg.data
        if self._is_final(data) and not pending.future.done():
            pending.future.set_result(data)

    def _body(self, request_id: str, inbox: str, max_tokens: int) -> bytes:
        if self._wire == "lean":
            request: dict[str, Any] = {"request_id": request_id}
        else:
            request = {"id": request_id}
        request |= {"model": MODEL, "messages": MESSAGES, "max_tokens": max_tokens, "stream": True}
        if self._resumable:
            request["resumable"] = True  # outputs to ai.out.chat.<id> only, kept by HFBUS_OUT
        elif self._durable:
            request["reply_to"] = inbox  # a stored request keeps no NATS reply subject
        return orjson.dumps(request)

    async def request(self, max_tokens: int, deadline: float) -> Sample:
        self._counter += 1
        request_id = f"{self._id_prefix}{self._counter}"
        inbox = OUT_PREFIX + request_id if self._resumable else f"{self._inbox_prefix}{self._counter}"
        body = self._body(request_id, inbox, max_tokens)
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[inbox] = pending
        started = now()
        tokens = 0
        error: str | None = None
        try:
            async with asyncio.timeout_at(deadline):
                if self._js is not None:
                    await self._js.publish(self._subject, body, headers={"Nats-Msg-Id": request_id})
                else:
                    await self._nc.publish(self._subject, body, reply=inbox)
                final = await pending.future
            tokens, error = self._parse(final)
            if error is None and tokens != max_tokens:
                error = f"got {tokens} tokens, asked for {max_tokens}"
        except TimeoutError:
            error = "timeout"
        except Exception as exc:  # a publish failure (no stream yet, connection lost) is an error sample
            error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            del self._pending[inbox]
        ended = now()
        tokens = tokens if error is None else 0
        return Sample(started, pending.first, ended, tokens, pending.messages, error, pending.max_gap)


def _final_vectorize(data: bytes) -> bool:
    # msgspec writes the `type` tag first; a vectorize request ends with its result or an error.
    return data.find(b'"result"', 0, 24) >= 0 or data.find(b'"error"', 0, 24) >= 0


def _parse_vectorize(data: bytes) -> tuple[int, str | None]:
    # A result is counted as one vector without decoding its 1,024 floats: the loader's cost per request must stay
    # far below the consumer's. The scenario checks the vectors themselves on a sample, with the hfbus client.
    if data.find(b'"result"', 0, 24) >= 0:
        return 1, None
    return _parse_typed(data)


class VectorizeTarget(BusTarget):
    """hfbus's `vectorize` tag over core NATS: one single-text request per call, `texts` taken in turn.

    `request(max_tokens, deadline)` ignores `max_tokens`: a sample's `tokens` is the number of vectors (1).
    """

    def __init__(self, name: str, nc: NATS, texts: list[str]) -> None:
        super().__init__(name, nc, "hfbus")
        self._subject = VECTORIZE_SUBJECT
        self._texts = texts
        self._is_final = _final_vectorize
        self._parse = _parse_vectorize

    def _body(self, request_id: str, inbox: str, max_tokens: int) -> bytes:
        text = self._texts[self._counter % len(self._texts)]
        return orjson.dumps({"id": request_id, "model": EMBED_MODEL, "input": text})

    async def request(self, max_tokens: int, deadline: float) -> Sample:
        return await super().request(1, deadline)


class _HttpTarget:
    """A chat completions endpoint read over one aiohttp session (the router itself, or the gateway)."""

    def __init__(self, name: str, base_url: str, bearer: str) -> None:
        self.name = name
        self._url = f"{base_url}/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class DirectTarget(_HttpTarget):
    """No bus: stream straight from the router with aiohttp, the floor every bus path is compared with."""

    def __init__(self, name: str, router_url: str) -> None:
        super().__init__(name, router_url, TOKEN)

    async def request(self, max_tokens: int, deadline: float) -> Sample:
        assert self._session is not None, "start() first"
        body = orjson.dumps({"model": MODEL, "messages": MESSAGES, "max_tokens": max_tokens, "stream": True})
        started = now()
        first = last = max_gap = 0.0
        reads = 0
        error: str | None = None
        try:
            async with asyncio.timeout_at(deadline):
                async with self._session.post(self._url, data=body, headers=self._headers) as response:
                    if response.status != 200:
                        error = f"HTTP {response.status}"
                    else:
                        tail = b""
                        async for data in response.content.iter_any():
                            arrived = now()
                            if not first:
                                first = arrived
                            elif arrived - last > max_gap:
                                max_gap = arrived - last
                            last = arrived
                            reads += 1
                            tail = data if len(data) >= 16 else tail[-16:] + data
                        if not tail.endswith(b"data: [DONE]\n\n"):
                            error = "stream ended without [DONE]"
        except TimeoutError:
            error = "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        # The fake router sends exactly max_tokens tokens when it finishes the stream.
        return Sample(started, first, now(), max_tokens if error is None else 0, reads, error, max_gap)


class GatewayTarget(_HttpTarget):
    """`hfbus gateway`'s `POST /v1/chat/completions` with `stream: true`, read as an SSE client reads it.

    Each read is scanned for `data: ` lines (counted as messages) without decoding them; the tail of the stream
    (the usage chunk that `stream_options.include_usage` adds, then `data: [DONE]`) is decoded once per request
    for the token count, so the loader's cost per token stays far below the gateway's.
    """

    async def request(self, max_tokens: int, deadline: float) -> Sample:
        assert self._session is not None, "start() first"
        body = orjson.dumps(
            {
                "model": MODEL,
                "messages": MESSAGES,
                "max_tokens": max_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        started = now()
        first = last = max_gap = 0.0
        events = tokens = 0
        error: str | None = None
        try:
            async with asyncio.timeout_at(deadline):
                async with self._session.post(self._url, data=body, headers=self._headers) as response:
                    if response.status != 200:
                        error = f"HTTP {response.status}: {(await response.text())[:160]}"
                    else:
                        tail = b""
                        async for data in response.content.iter_any():
                            arrived = now()
                            if not first:
                                first = arrived
                            elif arrived - last > max_gap:
                                max_gap = arrived - last
                            last = arrived
                            events += data.count(b"data: ")
                            tail = (tail + data)[-4096:]
                        tokens, error = _sse_usage(tail)
        except TimeoutError:
            error = "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        if error is None and tokens != max_tokens:
            error = f"got {tokens} tokens, asked for {max_tokens}"
        return Sample(started, first, now(), tokens if error is None else 0, events, error, max_gap)


def _sse_usage(tail: bytes) -> tuple[int, str | None]:
    """Completion tokens from the usage event before `data: [DONE]`, or what went wrong."""
    if not tail.endswith(b"data: [DONE]\n\n"):
        # An error after the first chunk is an `error` event, and the stream ends there.
        last = tail.rstrip().rpartition(b"data: ")[2]
        return 0, "stream ended without [DONE]" + (
            f": {last[:160].decode(errors='replace')}" if b'"error"' in last else ""
        )
    events = tail.split(b"\n\n")
    for event in reversed(events[:-2]):
        if not event.startswith(b"data: "):
            continue
        decoded = orjson.loads(event[6:])
        if "error" in decoded:
            return 0, str(decoded["error"])[:200]
        usage = decoded.get("usage")
        if usage is None:
            return 0, "no usage event before [DONE]"
        return int(usage.get("completion_tokens", 0)), None
    return 0, "no usage event before [DONE]"


async def connect(url: str) -> NATS:
    """A loader connection: no reconnects (a broken server should fail the run, not stall it)."""
    return await nats.connect(url, name="bench-loader", allow_reconnect=False, pending_size=8 * 1024 * 1024)
