"""Server-sent events, pure: bytes in, `data:` payloads out."""

from __future__ import annotations

DONE = b"[DONE]"


class SseDecoder:
    """Splits a byte stream into the `data:` payloads of complete events.

    Tolerates `data:` with or without the space (TGI sent `data:{…}`), CRLF framing, comment and
    `event:` lines, and multi-line data (joined with `\\n`, as the SSE spec says).
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes read from the socket; return the payloads of the events they completed."""
        buffer = self._buffer
        # The common case at a paced stream: one read, one whole single-line event, nothing held over.
        if not buffer and data.startswith(b"data: ") and data.find(b"\n", 6) == len(data) - 2 and data[-1] == 10:
            return [data[6:-2]]
        buffer += data
        if b"\r" in data:
            buffer[:] = buffer.replace(b"\r\n", b"\n")
        payloads: list[bytes] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            event = bytes(buffer[start:end])
            start = end + 2
            if event.startswith(b"data: ") and b"\n" not in event:  # the common case: one data line
                payloads.append(event[6:])
            elif (payload := _data_of(event)) is not None:
                payloads.append(payload)
        if start:
            del buffer[:start]
        return payloads

    def close(self) -> list[bytes]:
        """At end of stream: the last event when the upstream did not end it with a blank line."""
        event, self._buffer = bytes(self._buffer).strip(b"\n"), bytearray()
        payload = _data_of(event) if event else None
        return [payload] if payload is not None else []


def _data_of(event: bytes) -> bytes | None:
    data: bytes | None = None
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        part = line[6:] if line[5:6] == b" " else line[5:]
        data = part if data is None else data + b"\n" + part
    return data
