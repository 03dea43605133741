"""`pic2vid`: an image animated into a video by a queued job."""

from __future__ import annotations

from schemas.media import MediaUsage
from schemas.video import Pic2VidRequest
from services.handlers._tasks import answer_with_media, run
from services.handlers.seams import Context

Request = Pic2VidRequest


async def handle(request: Pic2VidRequest, ctx: Context) -> None:
    image = await ctx.media.load(request.image, field="image", kind="image")
    resolved, outcome = await run(
        ctx,
        request,
        "image-to-video",
        prompt=request.prompt,
        num_frames=request.num_frames,
        seed=request.seed,
        media=image.data,
        media_type=image.media_type,
        media_url=image.url,
    )
    await answer_with_media(ctx, resolved, outcome, MediaUsage(videos=1))
