"""Chunks encoded from a template are the bytes msgspec writes for the `Chunk` struct; header blocks are nats-py's."""

from __future__ import annotations

import pytest
from nats import errors
from nats.aio.client import Client as NATS

from schemas import Chunk
from schemas.codec import JSON_CODEC, MSGPACK_CODEC, Codec
from services.bus.publish import Publisher, header_block
from services.consumer.chunks import ChunkWriter

TEXTS = ["", "word ", 'quote " and \\ backslash', "new\nline\ttab", "ünïcödé ✓ 🙂", "\x00\x1f control", "</script>"]


class _Recorder(NATS):
    """A nats-py client that never connected: `Publisher` buffers into its pending list, as it would offline."""

    def __init__(self) -> None:
        super().__init__()
        self._max_pending_size = 1 << 20


@pytest.mark.parametrize("codec", [JSON_CODEC, MSGPACK_CODEC], ids=["json", "msgpack"])
@pytest.mark.parametrize("request_id", ["r1", "01HZX+a:b=c_d-e"])
async def test_a_templated_chunk_is_what_msgspec_writes(codec: Codec, request_id: str) -> None:
    nc = _Recorder()
    writer = ChunkWriter(nc, "ai.out.chat.x", None, codec, request_id, attempt=3)
    expected = []
    for seq, text in enumerate(TEXTS):
        writer.send(seq, text, None, None)
        expected.append(codec.encode(Chunk(id=request_id, seq=seq, attempt=3, delta=text)))
    writer.send(99, "x", "thinking", [{"index": 0}])
    full = Chunk(id=request_id, seq=99, attempt=3, delta="x", reasoning="thinking", tool_calls=[{"index": 0}])
    expected.append(codec.encode(full))
    assert [_payload(command) for command in nc._pending] == expected


def _payload(command: bytes) -> bytes:
    line, _, rest = command.partition(b"\r\n")
    size = int(line.split()[-1])
    assert rest[size:] == b"\r\n"
    return rest[:size]


def test_a_header_block_is_what_nats_py_sends() -> None:
    headers = {"Content-Type": "application/msgpack", "traceparent": " 00-ab-cd-01 ", "X-Multi": "a\r\nb"}
    assert header_block(headers) == (
        b"NATS/1.0\r\nContent-Type: application/msgpack\r\ntraceparent: 00-ab-cd-01\r\nX-Multi: a  b\r\n\r\n"
    )
    assert header_block(None) is None


async def test_an_hpub_carries_the_header_and_payload_sizes() -> None:
    nc = _Recorder()
    publisher = Publisher(nc, "ai.out.chat.r", {"A": "b"})
    assert publisher.publish(b"xyz") is True
    block = b"NATS/1.0\r\nA: b\r\n\r\n"
    assert nc._pending == [b"HPUB ai.out.chat.r %d %d\r\n%sxyz\r\n" % (len(block), len(block) + 3, block)]


async def test_a_disconnected_client_buffers_up_to_its_pending_size_as_publish_does() -> None:
    nc = _Recorder()
    nc._max_pending_size = 100
    publisher = Publisher(nc, "s", None)
    assert publisher.publish(b"x" * 40) is True
    with pytest.raises(errors.OutboundBufferLimitError):
        publisher.publish(b"x" * 80)
