"""Publishing without an await: for outputs sent from inside an upstream socket's read callback.

`Client.publish` is a coroutine: per message it builds the command, awaits an append, creates a future and
awaits a queue put to kick the flusher. A stream's chunks are published from a synchronous callback instead
(`services.hf.chat_stream`), so this module does the same steps without awaiting: it appends the `PUB`/`HPUB`
command to nats-py's outgoing buffer — the one every other publish of the connection goes through, so the
order of one request's outputs is kept — and writes that buffer once at the end of the event loop's pass, so
every message queued in the pass (200 paced streams' tokens arrive in the same few passes) goes out in one
write. nats-py wakes its flusher task for that: a queued future, a task step and a queue wait per write, which
cost 5 % of a paced token's CPU in the bench's A/B. When the socket is backed up, the write is left to that
flusher, which waits for the socket to drain as `publish` does. nats-py's limits are kept: a closed or draining
connection and an oversized payload raise as `publish` does, a disconnected client buffers up to its pending
size, and a connected one reports a full buffer (`publish` would wait there) so the caller can pause its
upstream and `await drained(nc)`.

It reads nats-py's private buffer fields (`_pending`, `_pending_data_size`, `_flush_queue`, its TCP transport's
`_io_writer`); the version is pinned by uv.lock, and tests/integration/test_chat.py streams through it.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Mapping
from typing import Any

from nats import errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


def header_block(headers: Mapping[str, str] | None) -> bytes | None:
    """The NATS header block `publish(headers=...)` would send, built once for many messages; None for none."""
    if headers is None:
        return None
    block = bytearray(b"NATS/1.0\r\n")
    for name, value in headers.items():
        key = name.strip()
        if not key:
            continue
        if not _HEADER_KEY.fullmatch(key):
            raise errors.BadHeaderError(key)
        block += key.encode() + b": " + value.strip().translate(_NEWLINES).encode() + b"\r\n"
    return bytes(block + b"\r\n")


class Publisher:
    """Publishes to one subject, with one header block, without awaiting (see the module's docstring)."""

    __slots__ = ("_header", "_nc", "_prefix", "_writes")

    def __init__(self, nc: NATS, subject: str, headers: Mapping[str, str] | None) -> None:
        if not subject or any(c in subject for c in " \t\r\n"):
            raise errors.BadSubjectError
        self._nc = nc
        self._writes = _writes_of(nc)
        self._header = header_block(headers)
        self._prefix = (b"HPUB " if self._header is not None else b"PUB ") + subject.encode() + b" "

    def publish(self, payload: bytes, reply: bytes = b"") -> bool:
        """Queue one message (with a reply subject when `reply` is given); False when the outgoing buffer is over
        nats-py's pending size (it is queued anyway).

        Raises what `Client.publish` raises for a closed or draining connection, an oversized payload, or a
        disconnected client whose buffer is full.
        """
        nc = self._nc
        size = len(payload)
        # One comparison for the usual state; anything else is checked as `Client.publish` checks it.
        connected = nc._status == NATS.CONNECTED
        if not connected or size > nc._max_payload:
            connected = _check(nc, size)
        header = self._header
        prefix = self._prefix + reply + b" " if reply else self._prefix
        if header is None:
            command = b"%b%d\r\n%b\r\n" % (prefix, size, payload)
        else:
            command = b"%b%d %d\r\n%b%b\r\n" % (prefix, len(header), len(header) + size, header, payload)
        nc._pending.append(command)
        pending = nc._pending_data_size = nc._pending_data_size + len(command)
        stats = nc.stats
        stats["out_msgs"] += 1
        stats["out_bytes"] += size
        if connected:
            self._writes.schedule()
        limit = nc._max_pending_size
        return limit <= 0 or pending <= limit


def _check(nc: NATS, size: int) -> bool:
    """`Client.publish`'s checks; True when connected (draining subscriptions counts), False to buffer only."""
    if nc.is_closed:
        raise errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise errors.ConnectionDrainingError
    if size > nc._max_payload:
        raise errors.MaxPayloadError
    if nc.is_connected:
        return True
    limit = nc._max_pending_size
    if limit <= 0 or size + nc._pending_data_size > limit:
        raise errors.OutboundBufferLimitError
    return False


class _Writes:
    """One connection's write at the end of the loop pass, scheduled once however many messages the pass queues."""

    __slots__ = ("_client", "_loop", "_scheduled")

    def __init__(self, nc: NATS) -> None:
        # Weak: a loop closed with the write still scheduled must not keep its client.
        self._client = weakref.ref(nc)
        self._loop = asyncio.get_running_loop()
        self._scheduled = False

    def schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        nc = self._client()
        if nc is None or not nc._pending or not nc.is_connected:
            return  # written already by nats-py, or kept for the reconnect, which sends the buffer first
        transport = nc._transport
        if transport is not None and _socket_takes_writes(transport):
            transport.writelines(nc._pending)
            nc._pending = []
            nc._pending_data_size = 0
            return
        queue, flusher = nc._flush_queue, nc._flusher_task
        if queue is not None and flusher is not None and not flusher.done():
            # The socket is backed up (or the transport is not a stream): nats-py's flusher writes and waits for it.
            if queue.empty():
                queue.put_nowait(self._loop.create_future())
            return
        # No flusher (it died): nats-py's own fallback writes and drains inline.
        task = self._loop.create_task(nc._flush_pending())
        _fallback_flushes.add(task)
        task.add_done_callback(_fallback_flushes.discard)


_connection_writes: weakref.WeakKeyDictionary[NATS, _Writes] = weakref.WeakKeyDictionary()
_fallback_flushes: set[asyncio.Task[None]] = set()


def _writes_of(nc: NATS) -> _Writes:
    writes = _connection_writes.get(nc)
    if writes is None:
        writes = _connection_writes[nc] = _Writes(nc)
    return writes


def _socket_takes_writes(transport: Any) -> bool:
    """True when nothing waits in the socket's buffer; over TLS both the TLS layer's and the raw socket's count."""
    writers = (getattr(transport, "_io_writer", None), getattr(transport, "_bare_io_writer", None))
    if writers[0] is None:
        return False  # nats-py's websocket transport sends only on `drain()`: its flusher must do it
    return all(writer is None or not writer.transport.get_write_buffer_size() for writer in writers)


async def drained(nc: NATS) -> None:
    """Wait until nats-py's outgoing buffer is back within its limit (what `publish` waits for when it is over)."""
    if nc.is_connected and 0 < nc._max_pending_size < nc._pending_data_size:
        await nc._flush_pending(force_flush=True)


def settle_nowait(msg: Msg, verdict: bytes) -> None:
    """Answer a JetStream delivery (`+ACK`, `-NAK`, ...) without an await, once: what nats-py's `Msg.ack()` and
    `Msg.nak()` publish, queued behind whatever this connection already sent for the request."""
    if msg.reply and not msg._ackd:
        msg._ackd = True
        Publisher(msg._client, msg.reply, None).publish(verdict)
