"""The floor: the least a Python consumer can do per paced token on this event loop (issue 18, part 2).

Not a product and not a yardstick to beat: it measures what the event loop itself costs per token, so the gap
between hfbus and the hand-rolled anchor can be split into "what any Python consumer pays" and "what we add".
It speaks the anchor's wire (`lean_consumer.py`: `request_id` in, `{"request_id","seq","delta","done"}` out) so
the loader drives it as it drives `lean`.

Per request: one HTTP/1.1 keep-alive connection from a small pool, an `asyncio.Protocol` that de-chunks and
splits SSE inside `data_received`, decodes each event into a minimal view, and appends a ready `PUB` command to
nats-py's pending list; one `call_soon` per loop pass writes everything pending. No task, future or await per
read or per token. No TLS, proxies, retries or timeouts: the bench router only.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from urllib.parse import urlsplit

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


class _Request(msgspec.Struct):
    request_id: str
    model: str
    messages: list[dict[str, str]]
    max_tokens: int = 256


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Event(msgspec.Struct):
    choices: list[_Choice] = []


_request = msgspec.json.Decoder(_Request)
_event = msgspec.json.Decoder(_Event)
_json = msgspec.json.Encoder()


class _Writer:
    """Appends PUB commands to nats-py's pending list and writes them once per loop pass."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._scheduled = False
        self._loop = asyncio.get_running_loop()

    def publish(self, subject: str, payload: bytes) -> None:
        nc = self._nc
        command = b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)
        nc._pending.append(command)
        nc._pending_data_size += len(command)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        nc = self._nc
        if nc._pending and nc._transport is not None:
            nc._transport.writelines(nc._pending)
            nc._pending = []
            nc._pending_data_size = 0


class _Stream(asyncio.Protocol):
    """One keep-alive connection to the router; carries one streamed request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self._raw = bytearray()
        self._sse = bytearray()
        self._headers_done = False
        self._need = 0
        self._complete = False
        self._reply = ""
        self._rid = ""
        self._seq = 0
        self._finish: str | None = None
        self._ended = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is one, unregistered

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._reply and not self._ended:
            self._end("upstream closed")

    def start(self, request: bytes, reply: str, rid: str) -> None:
        self._raw.clear()
        self._sse.clear()
        self._headers_done = False
        self._need = 0
        self._complete = False
        self._reply, self._rid, self._seq, self._finish, self._ended = reply, rid, 0, None, False
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        raw = self._raw
        raw += data
        if not self._headers_done:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                return
            if not raw.startswith(b"HTTP/1.1 200"):
                self._end(f"upstream {bytes(raw[9:12]).decode()}")
                return
            del raw[: end + 4]
            self._headers_done = True
        self._dechunk(raw)
        self._split()
        if self._complete and self._ended:
            self._pool.release(self)

    def _dechunk(self, raw: bytearray) -> None:
        sse = self._sse
        need = self._need  # bytes left in the current chunk, its CRLF included; 0 at a size line
        pos = 0
        while not self._complete:
            if need == 0:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(raw[pos:eol], 16)
                if size == 0:
                    if len(raw) - eol < 4:
                        break  # wait for the empty trailer line
                    self._complete = True
                    pos = eol + 4
                    break
                pos = eol + 2
                need = size + 2
            avail = len(raw) - pos
            if avail == 0:
                break
            if need > 2:
                take = min(need - 2, avail)
                sse += raw[pos : pos + take]
            else:
                take = min(need, avail)  # the CRLF closing the chunk
            pos += take
            need -= take
        self._need = need
        del raw[:pos]

    def _split(self) -> None:
        sse = self._sse
        start = 0
        while (end := sse.find(b"\n\n", start)) >= 0:
            payload = bytes(sse[start + 6 : end])
            start = end + 2
            if payload == b"[DONE]":
                self._end(None)
                break
            event = _event.decode(payload)
            if not event.choices:
                continue
            choice = event.choices[0]
            if choice.delta is not None and choice.delta.content:
                body = b'{"request_id":%s,"seq":%d,"delta":%s}' % (
                    _json.encode(self._rid),
                    self._seq,
                    _json.encode(choice.delta.content),
                )
                self._pool.writer.publish(self._reply, body)
                self._seq += 1
            if choice.finish_reason:
                self._finish = choice.finish_reason
        if start:
            del sse[:start]

    def _end(self, error: str | None) -> None:
        self._ended = True
        body = _json.encode(
            {"request_id": self._rid, "seq": self._seq, "delta": "", "done": True, "finish_reason": self._finish}
            | ({"error": error} if error else {})
        )
        self._pool.writer.publish(self._reply, body)
        self._reply = ""
        if error is not None and self.transport is not None:
            self.transport.close()


class _Pool:
    def __init__(self, router: str, token: str, writer: _Writer) -> None:
        url = urlsplit(router)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.path = url.path.rstrip("/") + "/chat/completions"
        self.token = token
        self.writer = writer
        self._idle: list[_Stream] = []

    def release(self, stream: _Stream) -> None:
        # Called once the terminating chunk arrived: a connection reused before would read it as the next reply.
        self._idle.append(stream)

    async def take(self) -> _Stream:
        while self._idle:
            stream = self._idle.pop()
            if not stream.closed:
                return stream
        loop = asyncio.get_running_loop()
        _, stream = await loop.create_connection(lambda: _Stream(self), self.host, self.port)
        return stream

    def head(self, body: bytes) -> bytes:
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body


async def _amain(args: argparse.Namespace) -> None:
    nc = await nats.connect(args.nats, name="floor-consumer", pending_size=64 * 1024 * 1024)
    pool = _Pool(args.router, args.token, _Writer(nc))

    async def on_request(msg: Msg) -> None:
        request = _request.decode(msg.data)
        body = _json.encode(
            {"model": request.model, "messages": request.messages, "max_tokens": request.max_tokens, "stream": True}
        )
        stream = await pool.take()
        stream.start(pool.head(body), msg.reply, request.request_id)

    await nc.subscribe("ai.chat", queue="ai-workers", cb=on_request, pending_msgs_limit=100_000)
    await nc.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("floor-consumer ready", flush=True)
    await stop.wait()
    await nc.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nats", required=True)
    parser.add_argument("--router", required=True, help="the router's /v1 URL")
    parser.add_argument("--token", default="hf_bench")
    args = parser.parse_args()
    import uvloop

    uvloop.run(_amain(args))


if __name__ == "__main__":
    main()
