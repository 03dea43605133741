"""`pic2pic`: an edited image from an image and a prompt."""

from __future__ import annotations

from schemas.images import Pic2PicRequest
from schemas.media import MediaUsage
from services.handlers._tasks import answer_with_media, run
from services.handlers.seams import Context

Request = Pic2PicRequest


async def handle(request: Pic2PicRequest, ctx: Context) -> None:
    image = await ctx.media.load(request.image, field="image", kind="image")
    resolved, outcome = await run(
        ctx,
        request,
        "image-to-image",
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        steps=request.steps,
        guidance_scale=request.guidance_scale,
        seed=request.seed,
        media=image.data,
        media_type=image.media_type,
        media_url=image.url,
    )
    await answer_with_media(ctx, resolved, outcome, MediaUsage(images=1))
