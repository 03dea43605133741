"""Drives a provider adapter's flow (submit, polls, result, download) and falls back across providers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import anyio

from services.errors import RateLimited, UpstreamTimeout, UpstreamUnavailable
from services.hf.answers import OnProgress, TaskOutcome
from services.hf.cooldown import Cooldowns
from services.hf.errors import router_request_id
from services.hf.mapping import ProviderRoute, choose
from services.hf.providers import (
    PROVIDERS,
    Download,
    HttpCall,
    HttpReply,
    Media,
    Pending,
    TaskAdapter,
    TaskInput,
    Transcript,
    Vectors,
    get_adapter,
    mapping_tasks,
)

logger = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(self, call: HttpCall) -> HttpReply: ...

    async def routes(self, hf_model: str) -> list[ProviderRoute]: ...


def supports(provider: str, task: str) -> bool:
    return task in PROVIDERS.get(provider, {})  # type: ignore[call-overload]


async def run_task(
    sender: Sender,
    router_url: str,
    template: TaskInput,
    pinned: str | None,
    on_progress: OnProgress,
    deadline_s: float,
    cooldowns: Cooldowns,
    on_fallback: Callable[[str, str, str], None] | None = None,
) -> TaskOutcome:
    """Run the task on the pinned provider, or on each live provider in turn while they are unavailable.

    Providers that failed several times in a row go last for a while (`Cooldowns`).
    """
    routes = await sender.routes(template.hf_model)
    candidates = choose(
        template.hf_model,
        routes,
        template.task,
        pinned,
        lambda p: supports(p, template.task),
        lambda p: mapping_tasks(p, template.task),
    )
    order = cooldowns.order([r.provider for r in candidates])
    candidates.sort(key=lambda r: order.index(r.provider))
    for index, route in enumerate(candidates):
        inp = replace(template, provider_model=route.provider_model)
        try:
            adapter = get_adapter(route.provider, template.task)
            output, request_id = await _drive(sender, adapter, inp, router_url, on_progress, deadline_s)
        except (UpstreamUnavailable, RateLimited) as err:
            cooldowns.failed(route.provider)
            if index == len(candidates) - 1:
                raise
            logger.warning("%s unavailable for %s (%s); falling back", route.provider, template.hf_model, err.message)
            if on_fallback is not None:
                on_fallback(template.task, route.provider, candidates[index + 1].provider)
            continue
        cooldowns.succeeded(route.provider)
        return TaskOutcome(output, route.provider, request_id)
    raise AssertionError("choose() never returns an empty list")


async def _drive(
    sender: Sender,
    adapter: TaskAdapter,
    inp: TaskInput,
    router_url: str,
    on_progress: OnProgress,
    deadline_s: float,
) -> tuple[Media | Vectors | Transcript, str | None]:
    queued: HttpCall | None = None
    request_id: str | None = None  # of the call that started the job
    try:
        with anyio.move_on_after(deadline_s):
            call = adapter.prepare(inp, router_url)
            while True:
                reply = await sender.send(call)
                request_id = request_id or router_request_id(reply.headers)
                step = adapter.parse(inp, reply, router_url)
                match step:
                    case Pending(call=next_call, status=status, queue_position=position, interval_s=interval):
                        queued = next_call if status != "completed" else None
                        await on_progress(status, position)
                        if interval > 0:
                            await anyio.sleep(interval)
                        call = next_call
                    case Download(call=next_call):
                        queued = None
                        call = next_call
                    case Media() | Vectors() | Transcript():
                        return step, request_id
    except anyio.get_cancelled_exc_class():
        await _cancel_job(sender, adapter, queued)
        raise
    await _cancel_job(sender, adapter, queued)
    raise UpstreamTimeout(f"the {adapter.provider} job did not finish within {deadline_s:g}s (HFBUS_JOB_TIMEOUT)")


async def _cancel_job(sender: Sender, adapter: TaskAdapter, queued: HttpCall | None) -> None:
    """Cancel a job still queued or running at the provider, so it is not billed for nothing (best effort)."""
    cancel = adapter.cancel(queued) if queued is not None else None
    if cancel is None:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        try:
            await sender.send(cancel)
            logger.info("cancelled the %s job at %s", adapter.provider, cancel.url.split("?")[0])
        except Exception as exc:
            logger.warning("could not cancel the %s job: %s", adapter.provider, exc)
