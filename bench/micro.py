"""`python -m bench.micro`: the pieces of a paced token's CPU, each measured alone in this process.

The README splits hfbus's CPU per paced token into per-request work, its own per-token code, aiohttp's part and
the rest (loop, socket reads, NATS writes). These are the in-process halves of that split; `bench.per_request`
measures a whole request against real processes.

- `hfbus per token`: one server-sent event through `StreamFeed.data`, as the socket callback gives it: the SSE
  split, the event decoded into its view, the transcript, the chunk built from its template and its `PUB`
  queued on a stand-in for nats-py's outgoing buffer (no socket: that part is the loop's, below).
- `aiohttp per read`: `ResponseHandler.data_received` with one chunked-framed event, the C parser included,
  handing the body to a reader that keeps nothing.
- `aiohttp per request`: an aiohttp POST and its read, against a server in this process, minus the same bytes
  sent and read through a plain asyncio stream: what aiohttp's request machinery costs beyond the socket work.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp.client_proto import ResponseHandler
from aiohttp.streams import StreamReader
from nats.aio.client import Client as NATS

from schemas.codec import JSON_CODEC
from services.consumer.chunks import ChunkWriter
from services.handlers.chat import _Relay, _Transcript
from services.hf.chat_stream import StreamFeed

EVENT = (
    b"data: "
    + orjson.dumps(
        {
            "id": "chatcmpl-0123456789abcdef0123456789abcdef",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "choices": [{"index": 0, "delta": {"content": "hello "}, "finish_reason": None}],
        }
    )
    + b"\n\n"
)
"""One token's event as the router sends it (the fake router's shape)."""


class _Buffer:
    """The fields of nats-py's client that queueing a `PUB` reads and writes.

    The write at the end of the loop pass is not timed here (the timed steps run in one pass): `is_connected`
    False lets it find nothing to do.
    """

    _status = NATS.CONNECTED
    _max_payload = 1 << 20
    _max_pending_size = 1 << 30
    is_connected = False

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._pending_data_size = 0
        self.stats = {"out_msgs": 0, "out_bytes": 0}


class _Chunks:
    """What `Outputs.chunk_nowait` does before the writer: number the chunk."""

    def __init__(self, writer: ChunkWriter) -> None:
        self._writer = writer
        self._seq = 0
        self.first_output_at: float | None = None

    def chunk_nowait(self, delta: str, reasoning: str | None = None, tool_calls: Any = None) -> bool:
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()
        seq, self._seq = self._seq, self._seq + 1
        return self._writer.send(seq, delta, reasoning, tool_calls)


def _per_call_us(step: Callable[[], object], calls: int) -> float:
    for _ in range(calls // 10):
        step()
    started = time.process_time()  # CPU, as the rest of the README's split: a busy machine inflates wall time
    for _ in range(calls):
        step()
    return (time.process_time() - started) / calls * 1e6


def hfbus_per_token(calls: int = 200_000) -> float:
    buffer = _Buffer()
    writer = ChunkWriter(buffer, "_INBOX.abcdefghijklmnopqrstuv.1", None, JSON_CODEC, "r" * 32, 1)  # type: ignore[arg-type]
    transcript = _Transcript()
    feed = StreamFeed(_Relay(_Chunks(writer), transcript), False)  # type: ignore[arg-type]

    def step() -> None:
        feed.data(EVENT)
        if len(buffer._pending) > 1000:  # what the flusher would have written by now
            buffer._pending.clear()
            transcript.text.clear()

    return _per_call_us(step, calls)


class _KeepNothing(StreamReader):
    __slots__ = ()

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        return False

    def begin_http_chunk_receiving(self) -> None:
        return None

    def end_http_chunk_receiving(self) -> None:
        return None


class _Transport(asyncio.Transport):
    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


def aiohttp_per_read(calls: int = 200_000) -> float:
    protocol = ResponseHandler(asyncio.get_running_loop())
    protocol.connection_made(_Transport())
    protocol.set_response_params(read_until_eof=False, auto_decompress=True)
    protocol.data_received(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    protocol._payload.__class__ = _KeepNothing  # type: ignore[union-attr]
    framed = b"%x\r\n%b\r\n" % (len(EVENT), EVENT)
    return _per_call_us(lambda: protocol.data_received(framed), calls)


_BODY = b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%b\r\n0\r\n\r\n" % (len(_BODY), _BODY)
)


class _Server(asyncio.Protocol):
    """Answers each request (a body with a Content-Length) with the same one-token stream."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport: Any = transport
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end].lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            self._transport.write(_RESPONSE)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def aiohttp_per_request(requests: int = 20_000) -> tuple[float, float]:
    """CPU µs per request through aiohttp, and through a plain stream, against the same in-process server."""
    server = await asyncio.get_running_loop().create_server(_Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:

        async def one() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

        for _ in range(requests // 10):
            await one()
        started = _cpu_s()
        for _ in range(requests):
            await one()
        through_aiohttp = (_cpu_s() - started) / requests * 1e6

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    started = _cpu_s()
    for _ in range(requests):
        writer.write(request)
        await reader.readexactly(len(_RESPONSE))
    through_stream = (_cpu_s() - started) / requests * 1e6
    writer.close()
    server.close()
    return through_aiohttp, through_stream


async def _amain() -> None:
    print(f"hfbus per token (StreamFeed.data, one event to a queued PUB): {hfbus_per_token():.2f} µs")
    print(f"aiohttp per read (data_received, C parser, one chunked event): {aiohttp_per_read():.2f} µs")
    through_aiohttp, through_stream = await aiohttp_per_request()
    print(
        f"aiohttp per request: {through_aiohttp:.1f} µs of CPU (POST and read), {through_stream:.1f} µs through a"
        f" plain stream: aiohttp's request machinery {through_aiohttp - through_stream:.1f} µs"
    )


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_amain())
    else:
        uvloop.run(_amain())


if __name__ == "__main__":
    main()
