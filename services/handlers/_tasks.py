"""What every non-chat handler does the same way: resolve, run on the providers, store media, answer."""

from __future__ import annotations

from typing import Any

from schemas.media import MediaResult, MediaUsage, TaskRequest
from services.catalog import Resolved, cost_usd
from services.errors import Internal, InvalidRequest
from services.handlers.seams import Context, TaskOutcome
from services.hf.providers import PROVIDER_NAMES, Media, Task, TaskInput


async def run(ctx: Context, request: TaskRequest, task: Task, **fields: Any) -> tuple[Resolved, TaskOutcome]:
    """Run `task` for `request` with the provider-neutral `fields`; the pinned provider, else the live ones."""
    resolved = ctx.resolve(request.model)
    pinned = request.provider or resolved.provider
    if pinned is not None and pinned not in PROVIDER_NAMES:
        known = ", ".join(PROVIDER_NAMES)
        raise InvalidRequest(f"provider: unknown provider {pinned!r}; known providers: {known}")
    template = TaskInput(
        task=task, provider_model="", hf_model=resolved.hf_model, options=dict(request.options or {}), **fields
    )
    return resolved, await ctx.upstream.run_task(template, pinned, ctx.progress)


async def answer_with_media(ctx: Context, resolved: Resolved, outcome: TaskOutcome, usage: MediaUsage) -> None:
    """Store the produced file and send the `result` with its ref, usage and cost."""
    media = outcome.output
    if not isinstance(media, Media):
        raise Internal(f"{ctx.tag}: the provider flow ended without media")
    ref = await ctx.media.save(media.data, media.content_type, name=f"{ctx.tag}/{ctx.request_id}/{ctx.attempt}")
    cost = cost_usd(
        resolved.entry,
        images=usage.images,
        videos=usage.videos,
        video_seconds=usage.seconds if usage.videos else 0.0,
        characters=usage.characters,
    )
    await ctx.result(
        MediaResult,
        media=[ref],
        usage=usage,
        model=resolved.hf_model,
        provider=outcome.provider,
        cost_usd=cost,
        router_request_id=outcome.router_request_id,
    )
