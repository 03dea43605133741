"""One request's `chunk` outputs, encoded from a template and published without an await.

A streamed answer sends one chunk per upstream read, usually one token: what the request id, attempt, codec,
subject and headers make of each message is the same every time, so it is built once per request. In JSON a
plain text chunk (no reasoning, no tool calls) is the template with its `seq` and `delta` filled in, byte for
byte what msgspec writes for the `Chunk` struct (tests/unit/test_chunks.py checks it); anything else goes
through the struct and the codec.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from nats.aio.client import Client as NATS

from schemas import Chunk
from schemas.codec import Codec
from schemas.common import JsonObject
from schemas.subjects import MSGPACK
from services.bus.outlog import RunLog
from services.bus.publish import Publisher

_json = msgspec.json.Encoder()


class ChunkWriter:
    """Encodes and queues one request's chunks (see the module's docstring)."""

    __slots__ = ("_attempt", "_codec", "_head", "_id", "_middle", "_publisher", "_run")

    def __init__(
        self,
        nc: NATS,
        subject: str | None,
        headers: Mapping[str, str] | None,
        codec: Codec,
        request_id: str,
        attempt: int,
        *,
        run: RunLog | None = None,
    ) -> None:
        # `subject` None: the chunks go to the resumable out subject only, through `run`.
        self._publisher = Publisher(nc, subject, headers) if subject is not None else None
        self._run = run
        self._codec = codec
        self._id = request_id
        self._attempt = attempt
        self._head: bytes | None = None
        self._middle = b""
        if codec.content_type != MSGPACK:
            # Chunk's fields in declaration order, its tag first: what msgspec writes for the struct.
            self._head = b'{"type":"chunk","id":' + _json.encode(request_id) + b',"seq":'
            self._middle = b',"attempt":' + _json.encode(attempt) + b',"delta":'

    def send(self, seq: int, delta: str, reasoning: str | None, tool_calls: list[JsonObject] | None) -> bool:
        """Queue chunk `seq`; False when the connection's outgoing buffer is full (see `Publisher.publish`)."""
        head = self._head
        if head is not None and reasoning is None and tool_calls is None:
            payload = b"%b%d%b%b%b" % (head, seq, self._middle, _json.encode(delta), _TAIL)
        else:
            output = Chunk(
                id=self._id, seq=seq, attempt=self._attempt, delta=delta, reasoning=reasoning, tool_calls=tool_calls
            )
            payload = self._codec.encode(output)
        room = True
        if self._publisher is not None:
            room = self._publisher.publish(payload)
        if self._run is not None:
            room = self._run.publish(seq, payload) and room
        return room


_TAIL = b',"reasoning":null,"tool_calls":null}'
