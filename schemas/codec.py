"""JSON and msgpack side by side, chosen by the `Content-Type` header; encoders and decoders built once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import msgspec

from schemas.subjects import CONTENT_TYPE, JSON, MSGPACK

T = TypeVar("T")


class Codec:
    """One wire encoding: an encoder and a cache of typed decoders (building a decoder costs more than using it)."""

    __slots__ = ("_decoders", "_make_decoder", "content_type", "encode")

    def __init__(
        self,
        content_type: str,
        encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder,
        make_decoder: Callable[[Any], Any],
    ) -> None:
        self.content_type = content_type
        self.encode: Callable[[Any], bytes] = encoder.encode
        self._make_decoder = make_decoder
        self._decoders: dict[Any, Any] = {}

    def decode(self, data: bytes, type_: Any) -> Any:
        """Decode `data` as `type_` (a struct or a union of structs); raises `msgspec.DecodeError`."""
        decoder = self._decoders.get(type_)
        if decoder is None:
            decoder = self._decoders[type_] = self._make_decoder(type_)
        return decoder.decode(data)

    def decode_as(self, data: bytes, type_: type[T]) -> T:
        """`decode` for a single struct type, typed."""
        return cast(T, self.decode(data, type_))


class JsonText:
    """A value kept as the JSON text it arrived in, for a field of an output struct.

    A JSON output carries the text as it is: an embedding of 1,024 floats costs no decode and re-encode on its
    way from the provider to the caller (about 60 µs each). A msgpack output, which cannot embed JSON text, gets
    the value decoded. Whoever makes one vouches for the text being valid JSON of the field's type.
    """

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


def _json_hook(value: Any) -> Any:
    if isinstance(value, JsonText):
        return msgspec.Raw(value.text)
    raise NotImplementedError(f"cannot encode a {type(value).__name__}")


def _msgpack_hook(value: Any) -> Any:
    if isinstance(value, JsonText):
        return msgspec.json.decode(value.text)
    raise NotImplementedError(f"cannot encode a {type(value).__name__}")


JSON_CODEC = Codec(JSON, msgspec.json.Encoder(enc_hook=_json_hook), lambda t: msgspec.json.Decoder(t))
MSGPACK_CODEC = Codec(MSGPACK, msgspec.msgpack.Encoder(enc_hook=_msgpack_hook), lambda t: msgspec.msgpack.Decoder(t))


def codec_for(headers: Mapping[str, str] | None) -> Codec:
    """msgpack when the message says `Content-Type: application/msgpack`, JSON otherwise."""
    if headers and headers.get(CONTENT_TYPE, "").startswith(MSGPACK):
        return MSGPACK_CODEC
    return JSON_CODEC


def encode(obj: Any) -> bytes:
    """JSON-encode a contract struct."""
    return JSON_CODEC.encode(obj)


def decode_output(data: bytes, output_type: Any, headers: Mapping[str, str] | None = None) -> Any:
    """Decode one output message of a tag's output union (e.g. `ChatOutput`)."""
    return codec_for(headers).decode(data, output_type)
