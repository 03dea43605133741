"""Media types from the bytes themselves: a declared type is never trusted alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


def sniff(data: bytes) -> str | None:
    """The media type the bytes' signature says, or None when it is not one hfbus knows."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:11] == b"M4A" else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


MediaKind = Literal["image", "audio"]


@dataclass(frozen=True, slots=True)
class LoadedMedia:
    """An input's bytes, their checked media type, and the https URL it came from when there was one."""

    data: bytes
    media_type: str
    url: str | None = None
