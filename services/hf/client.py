"""The only module that opens aiohttp sessions: one per process, shared by every handler."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

import aiohttp
import anyio
import msgspec
import orjson

from schemas import ChatRequest
from services.errors import ServiceError, UnknownModel, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from services.hf.answers import ChatAnswer, DeltaSink, OnDelta, OnProgress, StreamInfo, TaskOutcome
from services.hf.batching import EmbeddingBatcher
from services.hf.chat import chat_body, parse_completion
from services.hf.chat_stream import CallbackSink, Stalled, StreamFeed, follow
from services.hf.cooldown import Cooldowns
from services.hf.errors import error_for_status, router_request_id
from services.hf.fetch import PublicOnlyResolver, fetch
from services.hf.mapping import ProviderMapping, ProviderRoute
from services.hf.providers import HttpCall, HttpReply, TaskInput
from services.hf.tasks import run_task
from services.observability.tracing import span, with_trace
from services.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Attempts:
    """Whether a subscriber has already seen output: after that, a retry would show text twice."""

    delivered: bool = False


async def _no_progress(status: str, queue_position: int | None) -> None:
    return None


class HfClient:
    """Calls the router; retries what may change, and only before any output went out."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_retry: Callable[[str], None] | None = None,
        on_fallback: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_retry = on_retry
        self._on_fallback = on_fallback
        self._chat_url = f"{settings.router_url}/v1/chat/completions"
        self._headers = {"Content-Type": "application/json"}
        if settings.hf_token is not None:
            self._headers["Authorization"] = f"Bearer {settings.hf_token.reveal()}"
        self._session: aiohttp.ClientSession | None = None
        self._media_session: aiohttp.ClientSession | None = None
        self.mapping = ProviderMapping(self._hub_get, settings.mapping_ttl_s)
        self.cooldowns = Cooldowns(threshold=settings.cooldown_after, cooldown_s=settings.cooldown_s)
        self.retries = 0
        """Upstream calls repeated after a transient failure, since start."""
        self.batcher = EmbeddingBatcher(
            self._embed_once, max_wait_s=settings.embed_batch_wait_s, max_texts=settings.embed_batch_size
        )

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._settings.connect_timeout_s)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=300),
            # No total timeout: a long healthy stream must live. Connect is bounded here, silence by the watchdog.
            timeout=timeout,
        )
        # Media URLs come from callers and provider replies: a second session whose resolver refuses
        # non-public addresses, and which never carries the HF token.
        self._media_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, resolver=PublicOnlyResolver(self._settings.media_allow_hosts)),
            timeout=aiohttp.ClientTimeout(
                total=self._settings.job_timeout_s, sock_connect=self._settings.connect_timeout_s
            ),
        )
        return self

    async def _embed_once(self, template: TaskInput, pinned: str | None) -> TaskOutcome:
        return await self._run_task(template, pinned, _no_progress)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for session in (self._session, self._media_session):
            if session is not None:
                await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HfClient used outside `async with`")
        return self._session

    async def fetch_media(self, url: str, *, field: str) -> tuple[bytes, str | None]:
        """Download a media URL (https, public addresses only); bytes and the served content type."""
        if self._media_session is None:
            raise RuntimeError("HfClient used outside `async with`")
        settings = self._settings
        return await fetch(
            self._media_session,
            url,
            allowed_hosts=settings.media_allow_hosts,
            max_bytes=settings.max_media_bytes,
            field=field,
        )

    async def send(self, call: HttpCall) -> HttpReply:
        """Send one adapter call (retrying transient failures); non-2xx becomes a `ServiceError` leaf."""
        if not call.authenticated:
            body, content_type = await self.fetch_media(call.url, field="provider media")
            return HttpReply(200, {"content-type": content_type or ""}, body, call)
        with span("upstream"):
            return await self._retrying(lambda: self._send_once(call), _Attempts())

    async def _send_once(self, call: HttpCall) -> HttpReply:
        headers = with_trace(dict(call.headers))
        if auth := self._headers.get("Authorization"):
            headers["Authorization"] = auth
        data = call.data
        if call.json is not None:
            data = orjson.dumps(call.json)
            headers.setdefault("Content-Type", "application/json")
        with anyio.move_on_after(self._settings.request_timeout_s):
            try:
                async with self.session.request(
                    call.method, call.url, data=data, headers=with_trace(headers)
                ) as response:
                    body = await response.read()
                    if not 200 <= response.status < 300:
                        raise error_for_status(response.status, body, response.headers)
                    lowered = {k.lower(): v for k, v in response.headers.items()}
                    return HttpReply(response.status, lowered, body, call)
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamUnavailable(f"connection to the router failed ({type(exc).__name__})") from None
        raise UpstreamTimeout(f"the router did not answer within {self._settings.request_timeout_s:g}s")

    async def routes(self, hf_model: str) -> list[ProviderRoute]:
        """The providers the Hub maps `hf_model` to (cached)."""
        return await self.mapping.routes(hf_model)

    async def run_task(self, template: TaskInput, pinned: str | None, on_progress: OnProgress) -> TaskOutcome:
        """Run a non-chat task on the model's providers; see `services.hf.tasks`.

        Embeddings go through the batcher: concurrent requests for one model share an upstream call.
        """
        if template.task == "feature-extraction":
            return await self.batcher.embed(template, pinned)
        return await self._run_task(template, pinned, on_progress)

    async def _run_task(self, template: TaskInput, pinned: str | None, on_progress: OnProgress) -> TaskOutcome:
        settings = self._settings
        return await run_task(
            self,
            settings.router_url,
            template,
            pinned,
            on_progress,
            settings.job_timeout_s,
            self.cooldowns,
            self._on_fallback,
        )

    async def _hub_get(self, path: str) -> bytes | None:
        call = HttpCall("GET", f"{self._settings.hub_url}{path}", {})
        try:
            return (await self.send(call)).body
        except UnknownModel:
            return None

    async def stream_chat(self, request: ChatRequest, model: str, on_delta: OnDelta) -> StreamInfo:
        """Stream one completion, awaiting `on_delta` per socket read; `stream_chat_to` is the cheaper way."""
        return await self.stream_chat_to(request, model, CallbackSink(on_delta))

    async def stream_chat_to(self, request: ChatRequest, model: str, sink: DeltaSink) -> StreamInfo:
        """Stream one completion into `sink`, from the socket's read callback; a stall ends it with `timeout`."""
        body = chat_body(request, model, stream=True)
        attempts = _Attempts()
        with span("upstream"):
            return await self._retrying(lambda: self._stream_once(body, sink, attempts), attempts)

    async def complete_chat(self, request: ChatRequest, model: str) -> ChatAnswer:
        """One non-streamed completion, bounded by the request timeout."""
        body = chat_body(request, model, stream=False)
        with span("upstream"):
            return await self._retrying(lambda: self._complete_once(body), _Attempts())

    async def _retrying(self, call: Callable[[], Awaitable[T]], attempts: _Attempts) -> T:
        settings = self._settings
        attempt = 0
        while True:
            try:
                return await call()
            except ServiceError as err:
                delay = self._backoff(attempt, err.retry_after)
                if not err.retryable or attempts.delivered or attempt >= settings.max_retries or delay is None:
                    raise
                attempt += 1
                self.retries += 1
                if self._on_retry is not None:
                    self._on_retry(err.code.value)
                logger.info("retrying upstream call in %.2fs after: %s", delay, err.message)
                await anyio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Capped exponential backoff with jitter; the upstream's own estimate wins, unless it is too long."""
        settings = self._settings
        if retry_after is not None:
            return retry_after if retry_after <= settings.retry_max_s else None
        ceiling = min(settings.retry_max_s, settings.retry_base_s * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    async def _stream_once(self, body: bytes, sink: DeltaSink, attempts: _Attempts) -> StreamInfo:
        settings = self._settings
        first_token_by = asyncio.get_running_loop().time() + settings.first_token_timeout_s
        delivered = attempts.delivered
        try:
            # The deadline covers the connection, the headers and an error body; a stream's limits are `follow`'s.
            with anyio.CancelScope(deadline=first_token_by) as headers_wait:
                async with self.session.post(self._chat_url, data=body, headers=with_trace(self._headers)) as response:
                    if response.status != 200:
                        raise error_for_status(response.status, await response.read(), response.headers)
                    headers_wait.deadline = math.inf
                    feed = StreamFeed(sink, attempts.delivered)
                    try:
                        await follow(
                            response, feed, sink, first_token_by=first_token_by, idle_s=settings.idle_timeout_s
                        )
                    finally:
                        attempts.delivered = delivered = feed.delivered
                    return StreamInfo(response.headers.get("x-inference-provider"), router_request_id(response.headers))
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailable(f"connection to the router failed ({type(exc).__name__})") from None
        except Stalled:
            pass
        phase = "between tokens" if delivered else "before the first token"
        limit = settings.idle_timeout_s if delivered else settings.first_token_timeout_s
        raise UpstreamTimeout(f"the upstream stream stalled {phase} (no data for {limit:g}s)")

    async def _complete_once(self, body: bytes) -> ChatAnswer:
        limit = self._settings.request_timeout_s
        with anyio.move_on_after(limit):
            try:
                async with self.session.post(self._chat_url, data=body, headers=with_trace(self._headers)) as response:
                    payload = await response.read()
                    if response.status != 200:
                        raise error_for_status(response.status, payload, response.headers)
                    return parse_completion(
                        payload, response.headers.get("x-inference-provider"), router_request_id(response.headers)
                    )
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamUnavailable(f"connection to the router failed ({type(exc).__name__})") from None
            except msgspec.DecodeError:
                raise UpstreamError("the router's completion is not a chat.completion object") from None
        raise UpstreamTimeout(f"the router did not answer within {limit:g}s")
