"""`text2sound`: speech from text, stored as audio."""

from __future__ import annotations

from schemas.audio import Text2SoundRequest
from schemas.media import MediaUsage
from services.handlers._tasks import answer_with_media, run
from services.handlers.seams import Context

Request = Text2SoundRequest


async def handle(request: Text2SoundRequest, ctx: Context) -> None:
    resolved, outcome = await run(ctx, request, "text-to-speech", text=request.text, voice=request.voice)
    await answer_with_media(ctx, resolved, outcome, MediaUsage(characters=len(request.text)))
