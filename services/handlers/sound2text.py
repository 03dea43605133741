"""`sound2text`: speech recognition; the text, with timed segments when the provider gives them."""

from __future__ import annotations

from schemas.audio import Segment, Sound2TextRequest, TranscriptResult
from schemas.media import MediaUsage
from services.catalog import cost_usd
from services.errors import Internal
from services.handlers._tasks import run
from services.handlers.seams import Context
from services.hf.providers import Transcript

Request = Sound2TextRequest


async def handle(request: Sound2TextRequest, ctx: Context) -> None:
    audio = await ctx.media.load(request.audio, field="audio", kind="audio")
    resolved, outcome = await run(
        ctx,
        request,
        "automatic-speech-recognition",
        media=audio.data,
        media_type=audio.media_type,
        media_url=audio.url,
        language=request.language,
    )
    if not isinstance(outcome.output, Transcript):
        raise Internal("sound2text: the provider flow ended without a transcript")
    transcript = outcome.output
    segments = [Segment(start=start, end=end, text=text) for start, end, text in transcript.segments]
    seconds = segments[-1].end if segments else 0.0
    await ctx.result(
        TranscriptResult,
        text=transcript.text,
        segments=segments,
        usage=MediaUsage(seconds=seconds),
        model=resolved.hf_model,
        provider=outcome.provider,
        router_request_id=outcome.router_request_id,
        cost_usd=cost_usd(resolved.entry, audio_seconds=seconds) if seconds else None,
    )
