"""Small but real media files for the fake CDN: a PNG, a WAV and an MP4, each derived from a key.

Pure functions, no I/O. A key is a short hex digest of the request inputs (`media_key`), so the same prompt
always yields the same bytes, different prompts different bytes, and the CDN can rebuild a file from its name
alone instead of keeping every generated file in memory.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import wave
import zlib
from collections.abc import Callable
from typing import Literal

Extension = Literal["png", "wav", "mp4"]

IMAGE_SIZE = 64
SAMPLE_RATE = 16_000
TONE_SECONDS = 0.5
VIDEO_SECONDS = 1.0

CONTENT_TYPES: dict[Extension, str] = {"png": "image/png", "wav": "audio/wav", "mp4": "video/mp4"}

_NAME = re.compile(r"(?P<key>[0-9a-f]{16})\.(?P<ext>png|wav|mp4)")


def media_key(*parts: str | bytes | None) -> str:
    """A 16-hex-digit key from the inputs that shape an output (prompt, input media, ...)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else (part or b"")
        # Length-prefixed so ("ab", "c") and ("a", "bc") give different keys.
        digest.update(struct.pack(">Q", len(data)) + data)
    return digest.hexdigest()[:16]


def _seed(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(key: str) -> bytes:
    """A 64x64 RGB PNG: a diagonal gradient between two colours taken from the key's hash."""
    seed = _seed(key)
    start, end = seed[0:3], seed[3:6]
    span = 2 * (IMAGE_SIZE - 1)
    rows = bytearray()
    for y in range(IMAGE_SIZE):
        rows.append(0)  # filter type None for every scanline
        for x in range(IMAGE_SIZE):
            t = (x + y) / span
            rows.extend(round(a + (b - a) * t) for a, b in zip(start, end, strict=True))
    header = struct.pack(">IIBBBBB", IMAGE_SIZE, IMAGE_SIZE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _png_chunk(b"IEND", b"")
    )


def tone_hz(key: str) -> int:
    """The pitch of the key's WAV tone, 220..879 Hz."""
    return 220 + int.from_bytes(_seed(key)[:2], "big") % 660


def wav(key: str) -> bytes:
    """A 0.5 s, 16 kHz, 16-bit mono sine tone whose pitch comes from the key."""
    frequency = tone_hz(key)
    count = int(SAMPLE_RATE * TONE_SECONDS)
    samples = (round(12_000 * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(count))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(struct.pack(f"<{count}h", *samples))
    return buffer.getvalue()


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, flags: int, *payload: bytes) -> bytes:
    # Version 0 everywhere: 32-bit times and durations are plenty for a one-second clip.
    return _box(kind, struct.pack(">I", flags), *payload)


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_TIMESCALE = 1000


def _video_track(duration: int, sample_size: int, sample_offset: int) -> bytes:
    size = IMAGE_SIZE << 16
    tkhd_head = struct.pack(">IIIII8xHHH2x", 0, 0, 1, 0, duration, 0, 0, 0)
    tkhd = _full_box(b"tkhd", 3, tkhd_head, _MATRIX, struct.pack(">II", size, size))
    mdhd = _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0))  # language "und"
    hdlr = _full_box(b"hdlr", 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00")
    vmhd = _full_box(b"vmhd", 1, struct.pack(">H3H", 0, 0, 0, 0))
    dinf = _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"url ", 1)))
    # avc1 sample entry with an avcC for 64x64 constrained baseline; the one sample below is a stub, not H.264.
    avcc = _box(b"avcC", bytes([1, 0x42, 0xC0, 0x0A, 0xFF, 0xE0, 0x00]))
    avc1 = _box(
        b"avc1",
        struct.pack(">6xH2x2x12xHHIII", 1, IMAGE_SIZE, IMAGE_SIZE, 0x00480000, 0x00480000, 0),
        struct.pack(">H32sHh", 1, b"", 0x0018, -1),
        avcc,
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, struct.pack(">I", 1), avc1),
        _full_box(b"stts", 0, struct.pack(">III", 1, 1, duration)),
        _full_box(b"stss", 0, struct.pack(">II", 1, 1)),
        _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, 1, 1)),
        _full_box(b"stsz", 0, struct.pack(">III", 0, 1, sample_size)),
        _full_box(b"stco", 0, struct.pack(">II", 1, sample_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))


def mp4(key: str) -> bytes:
    """A structurally valid ISO BMFF file (ftyp, moov with one 64x64 video track, mdat) sniffed as video/mp4.

    The single sample is the key's hash, not an encoded frame: players open it, decoders give up. That is enough
    for the demo and the tests, which check the container, not the picture.
    """
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    sample = _seed(key)
    duration = int(VIDEO_SECONDS * _TIMESCALE)

    def moov(sample_offset: int) -> bytes:
        mvhd_head = struct.pack(">IIIIIH10x", 0, 0, _TIMESCALE, duration, 0x00010000, 0x0100)
        mvhd = _full_box(b"mvhd", 0, mvhd_head, _MATRIX, struct.pack(">24xI", 2))
        return _box(b"moov", mvhd, _video_track(duration, len(sample), sample_offset))

    # The chunk offset points into mdat, after ftyp and moov; moov's size does not depend on the offset's value.
    offset = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(offset) + _box(b"mdat", sample)


RENDERERS: dict[Extension, Callable[[str], bytes]] = {"png": png, "wav": wav, "mp4": mp4}


def file_name(key: str, ext: Extension) -> str:
    """The CDN name of the file for `key`."""
    return f"{key}.{ext}"


def render(name: str) -> tuple[bytes, str] | None:
    """The bytes and media type of a CDN file name from `file_name`; None for any other name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    ext: Extension = match["ext"]  # type: ignore[assignment]  # the regex admits only the three extensions
    return RENDERERS[ext](match["key"]), CONTENT_TYPES[ext]
