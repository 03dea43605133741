"""The fake HuggingFace router: one aiohttp app that records every request and misbehaves on demand."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import chat, hub, jobs, media, oneshot, openai_style, task_polls
from .faults import Fault

logger = logging.getLogger(__name__)

# Vision requests carry images as data URLs; aiohttp's 1 MiB default would turn them into 413s.
_MAX_BODY = 64 * 1024 * 1024

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Headers(dict[str, str]):
    """Header names lowercased, and looked up case-insensitively, so tests need not guess the client's spelling."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None, /) -> Any:
        return super().get(key.lower(), default)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake router received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names are lowercased; lookups ignore case."""
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return orjson.loads(self.body)


class FakeRouter:
    """A local stand-in for router.huggingface.co with knobs for pacing, faults and counters tests assert on."""

    def __init__(
        self,
        *,
        token: str | None = None,
        pace_s: float = 0.0,
        first_token_s: float = 0.0,
        default_tokens: int = 16,
        provider: str = "fake-provider",
    ) -> None:
        self.token = token
        self.pace_s = pace_s
        self.first_token_s = first_token_s
        self.default_tokens = default_tokens
        self.provider = provider
        self.requests: list[RecordedRequest] = []
        self.request_ids: list[str] = []
        """The `x-request-id` of every answer, in the order the answers finished."""
        self.faults: deque[Fault] = deque()
        self.disconnects = 0
        self.completed_streams = 0
        self.in_flight = 0
        self.shutting_down = False
        self.url = ""
        """Base URL once served (what HF_ROUTER_URL should be)."""
        self.models: dict[str, hub.HubModel] = dict(hub.MODELS)
        """The Hub mapping table; provider routes answer 404 for model ids it does not name."""
        self.poll_faults: deque[Fault] = deque()
        """Faults for the next status/result GETs of job flows, ahead of `faults`."""
        self.cdn_faults: deque[Fault] = deque()
        """Faults for the next CDN downloads; `faults` never reach the CDN."""
        self.job_polls = 2
        """Status polls a new job answers "not done" before it completes."""
        self.job_fail_next = False
        """Make the next submitted job (fal queue, Replicate, WaveSpeed, Together video) end in its failed state."""
        self.replicate_ready = True
        """False: Replicate answers 201 with `output: null`, as when `Prefer: wait` ran out."""
        self.embed_latency_s = 0.0
        """Seconds every feature-extraction call waits before answering, however many texts it carries."""
        self.jobs: dict[str, media.Job] = {}
        self.cancelled_jobs: list[str] = []
        """Ids of fal queue requests cancelled through their cancel_url."""
        self.app = self._build_app()

    def reset(self) -> None:
        """Forget recorded requests, queued faults and counters; `in_flight` keeps tracking live streams."""
        self.requests.clear()
        self.request_ids.clear()
        self.faults.clear()
        self.disconnects = 0
        self.completed_streams = 0

    def _build_app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: _Handler) -> web.StreamResponse:
            body = await request.read()
            headers = _Headers((name.lower(), value) for name, value in request.headers.items())
            self.requests.append(
                RecordedRequest(request.method, request.path, dict(request.query), headers, body),
            )
            response = await handler(request)
            if request_id := response.headers.get("x-request-id"):
                self.request_ids.append(request_id)
            return response

        async def stop(_: web.Application) -> None:
            # Runs before aiohttp waits for open handlers, so stalled answers end instead of holding up cleanup.
            self.shutting_down = True

        app = web.Application(middlewares=[record], client_max_size=_MAX_BODY)
        app.on_shutdown.append(stop)
        chat.add_routes(app, self)
        media.add_routes(app, self)
        oneshot.add_routes(app, self)
        jobs.add_routes(app, self)
        openai_style.add_routes(app, self)
        task_polls.add_routes(app, self)
        return app


LISTEN_BACKLOG = 4096
"""Pending connections the router's socket holds (the kernel caps it at net.core.somaxconn)."""


async def serve(router: FakeRouter, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start `router` on a TCP site (port 0 picks a free one); the caller awaits `runner.cleanup()`."""
    runner = web.AppRunner(router.app)
    await runner.setup()
    try:
        # A burst of hundreds of new connections must not overflow aiohttp's default backlog of 128: a dropped
        # SYN is retried after a full second, which shows as a stream that stalled before its first token.
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
        await site.start()
        bound = int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise
    router.url = f"http://{host}:{bound}"
    logger.info("fake router listening on %s", router.url)
    return runner, bound
