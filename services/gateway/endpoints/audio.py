"""`POST /v1/audio/transcriptions` (multipart `file`, `ai.sound2text`) and `POST /v1/audio/speech` (`ai.text2sound`).

Transcriptions answer in the `response_format` asked for: `json` (`{"text"}`), `text`, `verbose_json` (with
segments), `srt` or `vtt`. Speech answers the audio bytes with the provider's media type: hfbus does not
transcode, so `response_format` is a wish the provider may not share.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from aiohttp import web

from schemas import Tag
from schemas.audio import Segment, Sound2TextRequest, Text2SoundRequest, TranscriptResult
from schemas.media import MediaResult
from services.gateway.errors import bad_request
from services.gateway.requests import form_file, form_text, read_form, read_json
from services.gateway.state import GATEWAY, submit

_TRANSCRIPT_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")


class SpeechBody(msgspec.Struct, kw_only=True):
    input: str
    model: str | None = None
    voice: str | None = None
    response_format: str | None = None


async def transcriptions(request: web.Request) -> web.Response:
    form = await read_form(request)
    response_format = form_text(form, "response_format") or "json"
    if response_format not in _TRANSCRIPT_FORMATS:
        raise bad_request(f"`response_format` must be one of {', '.join(_TRANSCRIPT_FORMATS)}", param="response_format")
    fields = {"audio": form_file(form, "file"), "language": form_text(form, "language")}
    model = form_text(form, "model")
    result: TranscriptResult
    result, headers = await submit(request, Tag.SOUND2TEXT, Sound2TextRequest, model, fields)
    match response_format:
        case "text":
            return web.Response(text=result.text, content_type="text/plain", headers=headers)
        case "srt" | "vtt":
            return web.Response(
                text=_subtitles(result.segments, response_format), content_type="text/plain", headers=headers
            )
        case "verbose_json":
            body: dict[str, Any] = _verbose(result, form_text(form, "language"))
        case _:
            body = {"text": result.text}
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)


async def speech(request: web.Request) -> web.Response:
    body = await read_json(request, SpeechBody)
    result: MediaResult
    fields = {"text": body.input, "voice": body.voice}
    result, headers = await submit(request, Tag.TEXT2SOUND, Text2SoundRequest, body.model, fields)
    ref = result.media[0]
    data = await request.app[GATEWAY].bus.download(ref)
    return web.Response(body=data, content_type=ref.content_type, headers=headers)


def _verbose(result: TranscriptResult, language: str | None) -> dict[str, Any]:
    segments = [
        {
            "id": index,
            "seek": 0,
            "start": s.start,
            "end": s.end,
            "text": s.text,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 0.0,
            "no_speech_prob": 0.0,
        }
        for index, s in enumerate(result.segments)
    ]
    duration = result.segments[-1].end if result.segments else result.usage.seconds
    return {
        "task": "transcribe",
        "language": language or "",
        "duration": duration,
        "text": result.text,
        "segments": segments,
    }


def _subtitles(segments: list[Segment], kind: str) -> str:
    separator = "," if kind == "srt" else "."
    blocks = [] if kind == "srt" else ["WEBVTT\n"]
    for index, segment in enumerate(segments, start=1):
        span = f"{_clock(segment.start, separator)} --> {_clock(segment.end, separator)}"
        blocks.append(
            f"{index}\n{span}\n{segment.text.strip()}\n" if kind == "srt" else f"{span}\n{segment.text.strip()}\n"
        )
    return "\n".join(blocks)


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"
