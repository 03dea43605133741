"""The consumer process: one root task group holding a runner per tag and the cancel listener."""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import msgspec
from anyio.abc import TaskStatus
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from schemas import Subjects, Tag
from schemas.codec import codec_for
from schemas.models import decode_models_request
from services import __version__
from services.bus.connection import ConnectionHooks, connect
from services.bus.defaults import LiveDefaults
from services.bus.jetstream import ensure_dead_letter_stream, ensure_finals_stream, ensure_out_stream, ensure_stream
from services.bus.media_store import MediaStore
from services.bus.outlog import OutLog
from services.catalog import Catalog
from services.consumer.discovery import Discovery, new_instance_id
from services.consumer.events import DoneEvents
from services.consumer.inflight import InFlight
from services.consumer.outputs import Deps
from services.consumer.runner import TagRunner
from services.handlers import HANDLERS
from services.hf.client import HfClient
from services.observability import HealthServer, Metrics
from services.settings import Settings

logger = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 20_000
"""Tracked allocations between young-generation collections in a consumer process (the default is 700)."""


def tune_collector() -> None:
    """Garbage collection for a long-lived consumer process; called once, before it starts serving.

    What exists then (modules, settings, the catalog) lives as long as the process: frozen out of the collector's
    sight, so a full collection under load walks only what requests made. A request allocates a few hundred
    tracked objects (aiohttp's request and response, tasks, scopes) that mostly die by refcount when it ends; at
    the default 700 allocations per young collection they were walked, and promoted, while still alive. Measured
    at 200 paced streams: half the time in collections.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class App:
    """Every consumer of one process; `run` until `stop()` or SIGTERM/SIGINT, then shut down gracefully."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tags = settings.tags or tuple(HANDLERS)
        self.inflight = InFlight()
        self.metrics = Metrics()
        self.http_port = 0
        self.ready = False
        """True while every runner takes requests: what /readyz reports."""
        self.catalog = Catalog.load()
        self.runners: dict[str, TagRunner] = {}
        self.defaults = LiveDefaults()
        """The per-tag defaults set from the console (NATS KV), applied to the next request without a restart."""
        self.instance_id = new_instance_id()
        self._stop = anyio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def _ensure_out_stream(self, nc: NATS) -> None:
        try:
            await ensure_out_stream(nc, self.settings)
        except Exception as exc:
            if self.settings.mode == "durable":
                raise
            # Core mode runs without JetStream too; resumable requests are then answered live only.
            logger.warning(
                "no %s stream (%s): resumable outputs will not be kept", self.settings.subjects.out_stream, exc
            )

    async def run(
        self, *, handle_signals: bool = False, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until stopped; `task_status.started()` fires once every subscription is live."""
        settings = self.settings
        async with AsyncExitStack() as stack:
            hooks = ConnectionHooks()
            nc = await connect(settings, name=f"hfbus {','.join(self.tags)}", hooks=hooks)
            stack.push_async_callback(nc.drain)
            outlog = OutLog(nc)
            hooks.on_disconnect.append(outlog.disconnected)
            hooks.on_reconnect.append(outlog.reconnected)
            await outlog.open()
            stack.push_async_callback(outlog.close)
            metrics = self.metrics
            await stack.enter_async_context(self._health_server(nc))
            upstream = await stack.enter_async_context(
                HfClient(settings, on_retry=metrics.retried, on_fallback=metrics.fell_back)
            )
            if settings.mode == "durable":
                await ensure_stream(nc, settings)
                await ensure_dead_letter_stream(nc, settings)
                await ensure_finals_stream(nc, settings)
            if settings.resumable != "off":
                await self._ensure_out_stream(nc)
            media = MediaStore(nc, settings, upstream)
            if any(tag not in (Tag.CHAT, Tag.PIC2TEXT) for tag in self.tags):
                await media.open()
            events = DoneEvents(nc, settings.subjects, self.instance_id)
            deps = Deps(
                upstream=upstream,
                media=media,
                catalog=self.catalog,
                metrics=metrics,
                defaults=self.defaults,
                events=events,
                outlog=outlog,
            )

            async def on_cancel(msg: Msg) -> None:
                request_id = msg.subject.rsplit(".", 1)[-1]
                if self.inflight.cancel(request_id):
                    logger.info("cancelled request %s", request_id)

            cancel_subscription = await nc.subscribe(settings.subjects.cancel_all, cb=on_cancel)
            stack.push_async_callback(cancel_subscription.unsubscribe)

            async def on_models(msg: Msg) -> None:
                codec = codec_for(msg.headers)
                try:
                    wanted = decode_models_request(msg.data, msg.headers)
                except msgspec.DecodeError as exc:
                    await msg.respond(codec.encode({"error": f"invalid models request: {exc}"}))
                    return
                await msg.respond(codec.encode(self.catalog.describe(wanted.tag)))

            models_subscription = await nc.subscribe(
                settings.subjects.models, queue=Subjects.MODELS_QUEUE_GROUP, cb=on_models
            )
            stack.push_async_callback(models_subscription.unsubscribe)

            async with anyio.create_task_group() as outer:
                if handle_signals:
                    outer.start_soon(self._stop_on_signal)
                # In the outer group: it follows the bucket until the runners are done, then is cancelled with it.
                await outer.start(self.defaults.watch, nc, settings)
                async with anyio.create_task_group() as tg:
                    for tag in self.tags:
                        runner = TagRunner(nc, settings, tag, HANDLERS[tag], deps, self.inflight)
                        self.runners[tag] = runner
                        await tg.start(runner.serve)
                    discovery = Discovery(
                        nc, settings, __version__, self.runners, instance_id=self.instance_id, defaults=self.defaults
                    )
                    await discovery.start()
                    stack.push_async_callback(discovery.stop)
                    await nc.flush()
                    logger.info(
                        "hfbus %s serving %s in %s mode on %s (router %s)",
                        __version__,
                        ",".join(self.tags),
                        settings.mode,
                        settings.nats_url,
                        settings.router_url,
                    )
                    self.ready = True
                    task_status.started()
                    await self._stop.wait()
                    self.ready = False
                    logger.info("stopping: no new requests; in-flight ones have %gs", settings.shutdown_grace_s)
                    for runner in self.runners.values():
                        runner.stop()
                outer.cancel_scope.cancel()  # the signal and defaults watchers are all that is left
        logger.info("stopped")

    @asynccontextmanager
    async def _health_server(self, nc: NATS) -> AsyncIterator[None]:
        def ready() -> tuple[bool, str]:
            if not nc.is_connected:
                return False, "not connected to NATS"
            if not self.ready:
                return False, "consumers not started, or stopping"
            return True, f"serving {','.join(self.tags)}"

        server = HealthServer(self.settings.http_addr, self.metrics, ready)
        try:
            await server.__aenter__()
        except OSError as exc:
            # Several consumers on one host (scaling by hand, tests) would all want the same port.
            logger.warning("health and metrics server not started on %s: %s", self.settings.http_addr, exc.strerror)
            yield
            return
        self.http_port = server.port
        try:
            if server.port:
                logger.info("health and metrics on http://%s (/healthz, /readyz, /metrics)", self._addr(server.port))
            yield
        finally:
            await server.__aexit__(None, None, None)

    def _addr(self, port: int) -> str:
        host = self.settings.http_addr.rsplit(":", 1)[0] or "0.0.0.0"
        return f"{host}:{port}"

    async def _stop_on_signal(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.stop()
