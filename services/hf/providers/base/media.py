"""Media helpers shared by the adapters: inputs as data URLs, outputs as `Download` or `Media`."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from services.media_types import sniff

from .errors import ProviderReplyInvalid, UnsupportedInput
from .types import Download, HttpCall, HttpReply, Media, Task, TaskInput

# Python labels image bytes of unknown type image/jpeg, even PNG bytes (reference §9.2).
DEFAULT_IMAGE_TYPE = "image/jpeg"

_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

_BY_EXTENSION = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
}

_TASK_DEFAULT: dict[Task, str] = {
    "text-to-image": "image/png",
    "image-to-image": "image/png",
    "text-to-video": "video/mp4",
    "image-to-video": "video/mp4",
    "text-to-speech": "audio/mpeg",
}


def media_field(task: Task) -> str:
    """The request field that carries a task's media input (design.md names), for error messages."""
    return "audio" if task == "automatic-speech-recognition" else "image"


def bare_type(content_type: str | None) -> str:
    """`"Audio/WAV; rate=16000"` -> `"audio/wav"`; None -> `""`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def media_ref(inp: TaskInput, default_type: str = DEFAULT_IMAGE_TYPE) -> str:
    """The media input as the provider takes it in JSON: the https URL as given, or the bytes as a data URL."""
    if inp.media_url is not None:
        return inp.media_url
    return data_url(media_bytes(inp), bare_type(inp.media_type) or default_type)


def media_bytes(inp: TaskInput) -> bytes:
    """The inline media input; raises when the request gave only a URL (or nothing)."""
    if inp.media is None:
        raise UnsupportedInput(
            media_field(inp.task), "this provider needs the file itself; fetch the url and pass the bytes"
        )
    return inp.media


def media_type_of(task: Task, data: bytes, header: str | None = None, url: str = "") -> str:
    """Best media type: a specific Content-Type header, then the URL's extension, then magic bytes, then the task's."""
    declared = bare_type(header)
    if declared not in _GENERIC_TYPES:
        return declared
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _BY_EXTENSION.get(extension) or sniff(data) or _TASK_DEFAULT.get(task, "application/octet-stream")


def decode_b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderReplyInvalid(f"{what} is not valid base64") from exc


def b64_output(task: Task, value: str, what: str = "data[0].b64_json") -> Media:
    """A provider's base64 output (most often an OpenAI-style `data[0].b64_json`), typed by its bytes."""
    data = decode_b64(value, what)
    return Media(data, media_type_of(task, data))


def fetch_output(task: Task, url: str) -> Download | Media:
    """The step for a provider's output URL: a CDN download, or the bytes at once for a `data:` URL."""
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ProviderReplyInvalid("output data URL is not base64")
        data = decode_b64(payload, "output data URL")
        return Media(data, media_type_of(task, data, header[5:].removesuffix(";base64")))
    if not url.startswith(("https://", "http://")):
        raise ProviderReplyInvalid(f"output is not a URL: {url[:80]!r}")
    return Download(HttpCall("GET", url, {}, authenticated=False, purpose="download"))


def downloaded_media(task: Task, reply: HttpReply) -> Media:
    """The `Media` step for the reply to a `Download` call."""
    url = reply.call.url if reply.call is not None else ""
    return Media(reply.body, media_type_of(task, reply.body, reply.headers.get("content-type"), url))
