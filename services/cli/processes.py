"""Long-running commands: consumers (`run`), the dev stack behind `make run` (`dev`), the gateway, the
simulated router."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from services.settings import Secret, Settings

if TYPE_CHECKING:
    pass

logger = logging.getLogger("hfbus")

OFFLINE_TOKEN = "hf_offline_demo"  # the simulated router wants some bearer token, as the real one does


def run(args: argparse.Namespace, settings: Settings) -> None:
    from services.consumer.app import App, tune_collector

    if settings.hf_token is None:
        logger.warning("no HuggingFace token (HUGGINGFACE_API_KEY or HF_TOKEN): the router will answer 401")
    tune_collector()
    anyio.run(lambda: App(settings).run(handle_signals=True), backend_options=_loop_options())


def dev(args: argparse.Namespace, settings: Settings) -> None:
    from services.bus import natsserver
    from services.consumer.app import App
    from services.dev.fake_router import FakeRouter, serve
    from services.gateway.app import serve as serve_gateway

    server = None
    if not os.environ.get("NATS_URL"):
        server = natsserver.start(Path(args.data_dir) / "nats", port=args.nats_port)
        settings = replace(settings, nats_url=server.url)
        logger.info("embedded nats-server on %s (JetStream data in %s/nats)", server.url, args.data_dir)

    admin_key_line = "Admin key:                 HFBUS_ADMIN_KEY (from the environment)"
    if settings.admin_key is None:
        # A fresh one per `make run`: printed once in the banner below, never logged.
        generated = secrets.token_urlsafe(32)
        settings = replace(settings, admin_key=Secret(generated))
        admin_key_line = f"Admin key (shown once):    {generated}"

    async def serve_all() -> None:
        nonlocal settings
        runner = None
        if settings.hf_token is None:
            router = FakeRouter(token=OFFLINE_TOKEN, pace_s=0.03, first_token_s=0.15)
            runner, port = await serve(router)
            url = f"http://127.0.0.1:{port}"
            # The simulated router is also the Hub and the media CDN, on loopback over http.
            settings = replace(
                settings,
                router_url=url,
                hub_url=url,
                media_allow_hosts=frozenset({"127.0.0.1"}),
                hf_token=_offline_secret(),
            )
            sys.stderr.write(_OFFLINE_BANNER.format(url=settings.router_url))
        try:
            gateway_scope = anyio.CancelScope()

            async def consumers(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
                # The consumers own SIGINT/SIGTERM (a graceful stop); the gateway goes when they are done.
                try:
                    await App(settings).run(handle_signals=True, task_status=task_status)
                finally:
                    gateway_scope.cancel()

            async def gateway(*, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
                with gateway_scope:
                    await serve_gateway(settings, task_status=task_status)

            async with anyio.create_task_group() as tg:
                # Consumers first: in durable mode they create the stream the gateway detects the mode by.
                await tg.start(consumers)
                gateway_url = await tg.start(gateway)
                demo_key = await _demo_key(settings)
                sys.stderr.write(_GATEWAY_BANNER.format(url=gateway_url, key=demo_key, admin=admin_key_line))
        finally:
            if runner is not None:
                await runner.cleanup()

    try:
        anyio.run(serve_all, backend_options=_loop_options())
    finally:
        if server is not None:
            server.stop()


def gateway(args: argparse.Namespace, settings: Settings) -> None:
    from services.gateway.app import serve as serve_gateway

    async def serve_until_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                await tg.start(serve_gateway, settings)
                async for _ in signals:
                    break
                # In-flight exchanges are cancelled on the bus as the gateway's task group unwinds.
                tg.cancel_scope.cancel()

    anyio.run(serve_until_signal, backend_options=_loop_options())


async def _demo_key(settings: Settings) -> str:
    """A fresh key named `demo` for the banner; the one of an earlier `make run` is revoked (keys show once)."""
    from services.bus.connection import connect
    from services.gateway.access.keys import KeyStore

    nc = await connect(settings, name="hfbus-dev")
    try:
        keys = await KeyStore.open(nc, settings)
        await keys.revoke("demo")
        return await keys.create("demo")
    finally:
        await nc.close()


_OFFLINE_BANNER = """
  ==========================================================================
   No HuggingFace token set: answers come from the SIMULATED router at
   {url}. Set HUGGINGFACE_API_KEY (or HF_TOKEN) for real models.
   Try it:  .venv/bin/hfbus chat "hello"
  ==========================================================================
"""

_GATEWAY_BANNER = """
  Console:                   {url}/console
  {admin}
  OpenAI-compatible gateway: {url}/v1
  Demo key (shown once):     {key}
  Try it:  curl {url}/v1/chat/completions -H "Authorization: Bearer {key}" \\
             -H "Content-Type: application/json" \\
             -d '{{"model": "deepseek-r1", "messages": [{{"role": "user", "content": "hello"}}], "stream": true}}'

"""


def _offline_secret() -> Secret:
    return Secret(OFFLINE_TOKEN)


def fake_router(args: argparse.Namespace, settings: Settings) -> None:
    from services.dev.fake_router import FakeRouter, serve

    async def serve_forever() -> None:
        router = FakeRouter(pace_s=args.pace)
        runner, port = await serve(router, host=args.host, port=args.port)
        if args.host == "0.0.0.0":
            router.url = ""  # media links then follow the Host the caller used, not an unroutable 0.0.0.0
        sys.stderr.write(f"simulated HF router on http://{args.host}:{port} (HF_ROUTER_URL)\n")
        try:
            await anyio.sleep_forever()
        finally:
            await runner.cleanup()

    anyio.run(serve_forever)


def _loop_options() -> dict[str, bool]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}
