"""The `hfbus` command: consumers (`run`, `dev`), the simulated router, and publisher-side commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import anyio

from schemas import ChatResult, Chunk, Error
from services import __version__
from services.settings import Secret, Settings, SettingsError, parse_tags

logger = logging.getLogger("hfbus")

OFFLINE_TOKEN = "hf_offline_demo"  # the simulated router wants some bearer token, as the real one does


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `hfbus` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "tags", None):
            settings = replace(settings, tags=parse_tags(args.tags))
        if getattr(args, "mode", None):
            settings = replace(settings, mode=args.mode)
    except SettingsError as err:
        parser.exit(2, f"hfbus: {err}\n")
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        args.command(args, settings)
    except KeyboardInterrupt:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfbus", description="HuggingFace Inference Providers over NATS")
    parser.add_argument("--version", action="version", version=f"hfbus {__version__}")
    commands = parser.add_subparsers(required=True, metavar="command")

    run = commands.add_parser("run", help="run consumers (all tags by default) against NATS_URL")
    run.add_argument("--tags", help="comma-separated tags, e.g. chat,pic2text")
    run.add_argument("--mode", choices=("core", "durable"))
    run.set_defaults(command=_run)

    dev = commands.add_parser(
        "dev", help="what `make run` starts: embedded NATS, offline router if no token, consumers"
    )
    dev.add_argument("--tags")
    dev.add_argument("--mode", choices=("core", "durable"))
    dev.add_argument("--nats-port", type=int, default=4222)
    dev.add_argument("--data-dir", default=".hfbus")
    dev.set_defaults(command=_dev)

    router = commands.add_parser("fake-router", help="serve the simulated HF router on 127.0.0.1")
    router.add_argument("--port", type=int, default=8089)
    router.add_argument("--pace", type=float, default=0.02, help="seconds between tokens")
    router.set_defaults(command=_fake_router)

    chat = commands.add_parser("chat", help="send a chat request and print tokens as they arrive")
    chat.add_argument("prompt")
    chat.add_argument("--model")
    chat.add_argument("--no-stream", action="store_true")
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--image", help="an image URL: sends a vision request to pic2text")
    chat.set_defaults(command=_chat)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> None:
    from services.app import App

    if settings.hf_token is None:
        logger.warning("no HuggingFace token (HUGGINGFACE_API_KEY or HF_TOKEN): the router will answer 401")
    anyio.run(lambda: App(settings).run(handle_signals=True), backend_options=_loop_options())


def _dev(args: argparse.Namespace, settings: Settings) -> None:
    from services import natsserver
    from services.app import App
    from services.fake_router import FakeRouter, serve

    server = None
    if not os.environ.get("NATS_URL"):
        server = natsserver.start(Path(args.data_dir) / "nats", port=args.nats_port)
        settings = replace(settings, nats_url=server.url)
        logger.info("embedded nats-server on %s (JetStream data in %s/nats)", server.url, args.data_dir)

    async def serve_all() -> None:
        nonlocal settings
        runner = None
        if settings.hf_token is None:
            router = FakeRouter(token=OFFLINE_TOKEN, pace_s=0.03, first_token_s=0.15)
            runner, port = await serve(router)
            settings = replace(settings, router_url=f"http://127.0.0.1:{port}", hf_token=_offline_secret())
            sys.stderr.write(_BANNER.format(url=settings.router_url))
        try:
            await App(settings).run(handle_signals=True)
        finally:
            if runner is not None:
                await runner.cleanup()

    try:
        anyio.run(serve_all, backend_options=_loop_options())
    finally:
        if server is not None:
            server.stop()


_BANNER = """
  ==========================================================================
   No HuggingFace token set: answers come from the SIMULATED router at
   {url}. Set HUGGINGFACE_API_KEY (or HF_TOKEN) for real models.
   Try it:  .venv/bin/hfbus chat "hello"
  ==========================================================================

"""


def _offline_secret() -> Secret:
    return Secret(OFFLINE_TOKEN)


def _fake_router(args: argparse.Namespace, settings: Settings) -> None:
    from services.fake_router import FakeRouter, serve

    async def serve_forever() -> None:
        runner, port = await serve(FakeRouter(pace_s=args.pace), port=args.port)
        sys.stderr.write(f"simulated HF router on http://127.0.0.1:{port} (HF_ROUTER_URL)\n")
        try:
            await anyio.sleep_forever()
        finally:
            await runner.cleanup()

    anyio.run(serve_forever)


def _chat(args: argparse.Namespace, settings: Settings) -> None:
    from schemas import ChatMessage, ContentPart, ImagePart, ImageURL, TextPart
    from services.client import HfBus

    async def chat() -> int:
        options = {"max_tokens": args.max_tokens} if args.max_tokens else {}
        if args.image:
            parts: list[ContentPart] = [TextPart(text=args.prompt), ImagePart(image_url=ImageURL(url=args.image))]
            messages = [ChatMessage(role="user", content=parts)]
        else:
            messages = [ChatMessage(role="user", content=args.prompt)]
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix) as bus:
            started = time.perf_counter()
            first: float | None = None
            stream = bus.chat(messages, model=args.model, stream=not args.no_stream, vision=bool(args.image), **options)
            async for output in stream:
                if first is None:
                    first = time.perf_counter() - started
                if isinstance(output, Chunk):
                    if output.reasoning:
                        sys.stderr.write(f"\x1b[2m{output.reasoning}\x1b[0m")
                    sys.stdout.write(output.delta)
                    sys.stdout.flush()
                elif isinstance(output, ChatResult):
                    if args.no_stream:
                        sys.stdout.write(output.text)
                    usage = output.usage
                    sys.stdout.write("\n")
                    sys.stderr.write(
                        f"[{output.model} via {output.provider or 'router'}; {usage.prompt_tokens}+"
                        f"{usage.completion_tokens} tokens; first output {first * 1e3:.0f} ms, "
                        f"total {(time.perf_counter() - started) * 1e3:.0f} ms; {output.finish_reason}]\n"
                    )
                elif isinstance(output, Error):
                    sys.stderr.write(f"\nerror {output.code}: {output.message}\n")
                    return 1
        return 0

    sys.exit(anyio.run(chat))


def _loop_options() -> dict[str, bool]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}
