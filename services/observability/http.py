"""The operator endpoint on HFBUS_HTTP_ADDR: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

import orjson
from aiohttp import web

from services.observability.metrics import Metrics

logger = logging.getLogger(__name__)

DISABLED_ADDRS = frozenset({"", "off"})
SHUTDOWN_TIMEOUT_S = 2.0
"""Probes and scrapes are short; shutdown must not wait aiohttp's default minute for them."""

ReadyCheck = Callable[[], tuple[bool, str]]
"""Returns (ready, reason); the reason is shown on `/readyz`, so it must hold no secret."""


def parse_addr(addr: str, setting: str = "HFBUS_HTTP_ADDR") -> tuple[str | None, int]:
    """`host:port` (`[::1]:9464`, `:9464` for every interface) -> (host, port); raise `ValueError` when malformed."""
    host, sep, port_text = addr.strip().rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not 0 <= port <= 65535:
        raise ValueError(f"{setting} must be host:port or 'off', got {addr!r}")
    host = host.removeprefix("[").removesuffix("]")
    return host or None, port


class HealthServer:
    """aiohttp.web on HFBUS_HTTP_ADDR: /healthz (200 while the process runs), /readyz (200 when `ready()` says so,
    else 503 with a JSON reason), /metrics (Prometheus text). An addr of "" or "off" disables it.

    Raises `ValueError` for a malformed addr (at construction) and `OSError` when the port cannot be bound (on enter).
    """

    def __init__(self, addr: str, metrics: Metrics, ready: ReadyCheck) -> None:
        self.addr = addr
        self.enabled = addr.strip().lower() not in DISABLED_ADDRS
        self._host, self._port = parse_addr(addr) if self.enabled else (None, 0)
        self._metrics = metrics
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.port = 0
        """The bound port once entered; 0 while stopped or disabled."""

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        return app

    async def __aenter__(self) -> Self:
        if not self.enabled:
            return self
        # access_log=None: probes every few seconds must not fill the logs.
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot listen on HFBUS_HTTP_ADDR={self.addr}: {exc.strerror}") from exc
        self._runner = runner
        bound = runner.addresses
        self.port = int(bound[0][1]) if bound else self._port
        logger.info("health and metrics on http://%s:%d (/healthz, /readyz, /metrics)", self._host or "*", self.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        runner, self._runner = self._runner, None
        self.port = 0
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            ready, reason = self._ready()
        except Exception:
            logger.exception("the readiness check failed")
            ready, reason = False, "the readiness check failed"
        if ready:
            return _json(200, {"status": "ready", "reason": reason})
        return _json(503, {"status": "not ready", "reason": reason})

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        # Passed as a header: aiohttp's `content_type=` refuses a value that carries parameters.
        return web.Response(body=body, headers={"Content-Type": content_type})


def _json(status: int, payload: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")
