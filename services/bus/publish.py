"""Publishing without an await: for outputs sent from inside an upstream socket's read callback.

`Client.publish` is a coroutine: per message it builds the command, awaits an append, creates a future and
awaits a queue put to kick the flusher. A stream's chunks are published from a synchronous callback instead
(`services.hf.chat_stream`), so this module does the same steps without awaiting: it appends the `PUB`/`HPUB`
command to nats-py's outgoing buffer — the one every other publish of the connection goes through, so the
order of one request's outputs is kept — and wakes nats-py's own flusher when it is idle. nats-py's limits are
kept: a closed or draining connection and an oversized payload raise as `publish` does, a disconnected client
buffers up to its pending size, and a connected one reports a full buffer (`publish` would wait there) so the
caller can pause its upstream and `await drained(nc)`.

It reads nats-py's private buffer fields (`_pending`, `_pending_data_size`, `_flush_queue`); the version is
pinned by uv.lock, and tests/integration/test_chat.py streams through it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

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

    __slots__ = ("_header", "_loop", "_nc", "_prefix")

    def __init__(self, nc: NATS, subject: str, headers: Mapping[str, str] | None) -> None:
        if not subject or any(c in subject for c in " \t\r\n"):
            raise errors.BadSubjectError
        self._nc = nc
        self._loop = asyncio.get_running_loop()
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
            queue = nc._flush_queue
            # Wake nats-py's flusher as `publish` does, unless it is woken already: one write takes all queued.
            if queue is not None and queue.empty():
                flusher = nc._flusher_task
                if flusher is not None and not flusher.done():
                    queue.put_nowait(self._loop.create_future())
                else:
                    _write_inline(nc)
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


def _write_inline(nc: NATS) -> None:
    # As nats-py does when its flusher task died: write at once (the transport buffers what the socket refuses).
    if nc._transport is not None and nc._pending:
        nc._transport.writelines(nc._pending[:])
        nc._pending = []
        nc._pending_data_size = 0


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
