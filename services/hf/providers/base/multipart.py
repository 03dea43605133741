"""`multipart/form-data` bodies for the OpenAI-style transcription routes (a file part, then plain fields)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# The extensions both official clients name an uploaded audio part by (the JS client's table; huggingface_hub
# gets the same from `mimetypes` for these types). Transcription servers sniff the format from the file name.
AUDIO_EXTENSIONS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "mp4",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
}


@dataclass(frozen=True, slots=True)
class FilePart:
    """An uploaded file: its bytes, the name it is sent under, and its media type ("" when unknown)."""

    data: bytes = field(repr=False)
    filename: str
    media_type: str = ""


def audio_part(data: bytes, media_type: str) -> FilePart:
    """The `file` part of a transcription upload: `audio.<ext>`, `.wav` when the type is unknown (both clients)."""
    return FilePart(data, f"audio.{AUDIO_EXTENSIONS.get(media_type, 'wav')}", media_type)


def field_value(value: Any) -> str:
    """A form field as both clients write it: strings as is, booleans lower-case, numbers, anything else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def form_data(file: FilePart | str, fields: dict[str, Any]) -> tuple[bytes, str]:
    """The body and its Content-Type: `file` first (a file part, or a URL as a plain field), then `fields`.

    Fields whose value is None are left out. The boundary is derived from the content instead of drawn at
    random, so the same request always has the same bytes (adapters stay pure and testable); a boundary that
    is a 32-hex-digit digest of the body cannot plausibly occur inside it.
    """
    values = {key: field_value(value) for key, value in fields.items() if value is not None}
    digest = hashlib.sha256(file.data if isinstance(file, FilePart) else file.encode())
    for key, value in values.items():
        digest.update(f"\x00{key}\x00{value}".encode())
    boundary = f"hfbus{digest.hexdigest()[:32]}"
    lines: list[bytes] = []
    if isinstance(file, FilePart):
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{file.filename}"'.encode(),
            f"Content-Type: {file.media_type or 'application/octet-stream'}".encode(),
            b"",
            file.data,
        ]
    else:
        values = {"file": file, **values}
    for key, value in values.items():
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{key}"'.encode(),
            b"",
            value.encode(),
        ]
    lines += [f"--{boundary}--".encode(), b""]
    return b"\r\n".join(lines), f"multipart/form-data; boundary={boundary}"
