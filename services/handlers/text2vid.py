"""`text2vid`: a queued video job; progress outputs while it runs, then the stored video."""

from __future__ import annotations

from schemas.media import MediaUsage
from schemas.video import Text2VidRequest
from services.handlers._tasks import answer_with_media, run
from services.handlers.seams import Context

Request = Text2VidRequest


async def handle(request: Text2VidRequest, ctx: Context) -> None:
    resolved, outcome = await run(
        ctx,
        request,
        "text-to-video",
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_frames=request.num_frames,
        seed=request.seed,
    )
    await answer_with_media(ctx, resolved, outcome, MediaUsage(videos=1))
