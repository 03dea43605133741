"""The SSE decoder: bytes in any split, `data:` payloads out."""

from __future__ import annotations

import pytest

from services.hf.sse import SseDecoder

STREAM = b'data: {"a":1}\n\ndata: {"b":2}\n\n: keep-alive comment\n\nevent: message\ndata: {"c":3}\n\ndata: [DONE]\n\n'
EXPECTED = [b'{"a":1}', b'{"b":2}', b'{"c":3}', b"[DONE]"]


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, len(STREAM)])
def test_events_come_out_whole_however_the_bytes_are_split(piece: int) -> None:
    decoder = SseDecoder()
    payloads = []
    for start in range(0, len(STREAM), piece):
        payloads += decoder.feed(STREAM[start : start + piece])
    assert payloads == EXPECTED
    assert decoder.close() == []


def test_data_without_a_space_and_crlf_framing_are_accepted() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data:{"tgi":true}\r\n\r\ndata: x\r') == [b'{"tgi":true}']
    assert decoder.feed(b"\n\r\n") == [b"x"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert SseDecoder().feed(b"data: line one\ndata: line two\n\n") == [b"line one\nline two"]


def test_an_event_without_a_trailing_blank_line_is_returned_at_close() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"last":1}\n') == []
    assert decoder.close() == [b'{"last":1}']


def test_lines_that_are_not_data_yield_nothing() -> None:
    assert SseDecoder().feed(b"event: ping\nid: 7\nretry: 100\n\n") == []
