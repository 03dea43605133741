"""`text2pic`: an image from a prompt, stored in the object store."""

from __future__ import annotations

from schemas.images import Text2PicRequest
from schemas.media import MediaUsage
from services.handlers._tasks import answer_with_media, run
from services.handlers.seams import Context

Request = Text2PicRequest


async def handle(request: Text2PicRequest, ctx: Context) -> None:
    resolved, outcome = await run(
        ctx,
        request,
        "text-to-image",
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        width=request.width,
        height=request.height,
        steps=request.steps,
        guidance_scale=request.guidance_scale,
        seed=request.seed,
    )
    await answer_with_media(ctx, resolved, outcome, MediaUsage(images=1))
