"""Publishing without an await, against a real nats-server: in order with nats-py's own publishes, nothing
lost when the socket backs up (the write is then nats-py's flusher's, which waits for the socket)."""

from __future__ import annotations

import asyncio

import anyio
import nats
import pytest
from nats.aio.msg import Msg

from services.bus.natsserver import NatsServer
from services.bus.publish import Publisher

pytestmark = pytest.mark.integration


async def _reader(url: str, subject: str, expected: int) -> tuple[nats.NATS, list[bytes], anyio.Event]:
    # A connection of its own, so the publisher's socket is the only one that backs up.
    client = await nats.connect(url, pending_size=0)
    received: list[bytes] = []
    complete = anyio.Event()

    async def on_message(msg: Msg) -> None:
        received.append(msg.data)
        if len(received) == expected:
            complete.set()

    await client.subscribe(subject, cb=on_message, pending_bytes_limit=-1, pending_msgs_limit=-1)
    await client.flush()
    return client, received, complete


async def test_messages_queued_without_an_await_keep_their_order_with_awaited_publishes(
    nc: nats.NATS, nats_server: NatsServer, prefix: str
) -> None:
    subject = f"{prefix}.order"
    reader, received, complete = await _reader(nats_server.url, subject, 2_000)
    try:
        publisher = Publisher(nc, subject, None)
        for n in range(2_000):
            if n % 3 == 0:
                await nc.publish(subject, b"%d" % n)
            else:
                publisher.publish(b"%d" % n)
            if n % 7 == 0:
                await asyncio.sleep(0)  # let some loop passes write what is queued, some not
        with anyio.fail_after(10):
            await complete.wait()
        assert [int(data) for data in received] == list(range(2_000))
    finally:
        await reader.close()


async def test_a_backed_up_socket_loses_nothing_and_reports_a_full_buffer(nats_server: NatsServer, prefix: str) -> None:
    subject = f"{prefix}.bulk"
    count, size = 121, 256 * 1024  # 30 MiB in one burst: far past what the socket takes in one loop pass
    reader, received, complete = await _reader(nats_server.url, subject, count)
    writer = await nats.connect(nats_server.url, pending_size=2 * 1024 * 1024)
    # nats-server PINGs a new client 2 s (plus up to 20 % jitter) after it connects, and nats-py flushes its buffer
    # to answer; past that, the next PING is minutes away, so only the publish path can carry the last message.
    await asyncio.sleep(3.0)
    try:
        publisher = Publisher(writer, subject, None)
        over_limit = [not publisher.publish(n.to_bytes(4, "big") + bytes(size - 4)) for n in range(count - 1)]
        await asyncio.sleep(0)  # the burst goes to the transport in one write; the socket is now behind
        assert writer._transport is not None
        assert writer._transport._io_writer.transport.get_write_buffer_size() > 0  # type: ignore[attr-defined]
        # A message queued while the socket is behind is written by nats-py's flusher once the socket drains; no
        # other publish or flush comes to carry it.
        publisher.publish((count - 1).to_bytes(4, "big") + bytes(size - 4))
        with anyio.fail_after(30):
            await complete.wait()
        assert [int.from_bytes(data[:4], "big") for data in received] == list(range(count))
        assert all(len(data) == size for data in received)
        # The caller is told to pause once the buffer is past the connection's pending size: 2 MiB, the 8th message.
        assert over_limit.index(True) == 7
    finally:
        await writer.close()
        await reader.close()
