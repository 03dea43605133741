"""`hfbus gateway`: the OpenAI-compatible HTTP API on HFBUS_GATEWAY_ADDR, publishing onto the bus.

Every request is admitted against its virtual key's limits, becomes one bus request, and is settled with what
it cost when its final output arrives, even if the client hung up before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from aiohttp import web
from anyio.abc import TaskStatus

from services.catalog import Catalog
from services.client import HfBus
from services.gateway.access.guard import KeyGuard
from services.gateway.console import Console, add_console
from services.gateway.endpoints import audio, chat, embeddings, images, links, models, videos
from services.gateway.endpoints.links import LINKS, MediaLinks
from services.gateway.endpoints.videos import JOBS, VideoJobs
from services.gateway.errors import ApiError
from services.gateway.state import GATEWAY, REQUEST_ID, Gateway, new_request_id
from services.observability.http import parse_addr
from services.settings import Settings

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
"""The largest request body (an image or audio upload, base64 in JSON); larger ones get a 413."""

_HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every response carries `x-request-id`; every failure is an OpenAI-shaped error body."""
    request[REQUEST_ID] = request_id = new_request_id()
    try:
        response = await handler(request)
    except ApiError as err:
        return err.response(request_id)
    except web.HTTPRedirection:
        raise  # the console's `/console` -> `/console/`: a redirect, not an error
    except web.HTTPException as exc:  # routing (404, 405) and the body limit (413)
        kind = _HTTP_TYPES.get(exc.status, "invalid_request_error" if exc.status < 500 else "server_error")
        return ApiError(exc.status, exc.reason, type=kind, code=str(exc.status)).response(request_id)
    if not response.prepared:
        response.headers.setdefault("x-request-id", request_id)
    return response


def make_app(
    gateway: Gateway, media_links: MediaLinks, video_jobs: VideoJobs, console: Console | None = None
) -> web.Application:
    app = web.Application(middlewares=[openai_errors], client_max_size=MAX_BODY_BYTES)
    if console is not None:
        add_console(app, console)
    app[GATEWAY] = gateway
    app[LINKS] = media_links
    app[JOBS] = video_jobs
    app.router.add_post("/v1/chat/completions", chat.completions)
    app.router.add_post("/v1/embeddings", embeddings.create)
    app.router.add_post("/v1/images/generations", images.generations)
    app.router.add_post("/v1/images/edits", images.edits)
    app.router.add_post("/v1/audio/transcriptions", audio.transcriptions)
    app.router.add_post("/v1/audio/speech", audio.speech)
    app.router.add_post("/v1/videos", videos.create)
    app.router.add_get("/v1/videos/{video_id}", videos.retrieve)
    app.router.add_get("/v1/videos/{video_id}/content", videos.content)
    app.router.add_get("/v1/files/{token}/content", links.content)
    app.router.add_get("/v1/models", models.list_models)
    app.router.add_get("/v1/models/{model:.+}", models.get_model)
    return app


LISTEN_BACKLOG = 4096
"""Pending connections the gateway's socket holds (the kernel caps it at net.core.somaxconn)."""


async def serve(settings: Settings, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; `task_status.started` gets the base URL once the port is bound."""
    from services.bus.connection import credential_options

    host, port = parse_addr(settings.gateway_addr, "HFBUS_GATEWAY_ADDR")
    catalog = Catalog.load()
    stack = AsyncExitStack()
    async with (
        HfBus.connect(settings.nats_url, prefix=settings.prefix, **credential_options(settings)) as bus,
        _closed_when_done(stack),
        anyio.create_task_group() as tasks,
    ):
        guard = await KeyGuard.open(bus.nc, settings, catalog)
        media_links, video_jobs = await MediaLinks.open(bus.nc, settings), await VideoJobs.open(bus.nc, settings)
        console = await Console.open(stack, settings, bus, catalog, guard)
        app = make_app(Gateway(bus, tasks, catalog, guard), media_links, video_jobs, console)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        try:
            # Hundreds of clients connecting at once must not overflow aiohttp's default backlog of 128: a dropped
            # SYN is retried by the client's kernel after a second, a stall before the first token.
            site = web.TCPSite(runner, host or "0.0.0.0", port, backlog=LISTEN_BACKLOG)
            await site.start()
            bound = runner.addresses[0]
            url = f"http://{host or '127.0.0.1'}:{bound[1]}"
            logger.info("gateway serving the OpenAI API on %s/v1 (%s mode)", url, bus.mode)
            if settings.admin_key is None:
                logger.info("console at %s/console is off: set HFBUS_ADMIN_KEY to sign in", url)
            else:
                logger.info("console at %s/console", url)
            task_status.started(url)
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()


@asynccontextmanager
async def _closed_when_done(stack: AsyncExitStack) -> AsyncIterator[None]:
    # Shielded: the gateway stops by cancellation, and the Hub client's session must still close, not leak.
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await stack.aclose()
