"""The `hfbus` command: consumers (`run`, `dev`), the simulated router, and publisher-side commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from schemas import ChatResult, Chunk, Error, Progress
from services import __version__
from services.bus.connection import credential_options
from services.observability import configure_logging
from services.settings import Secret, Settings, SettingsError, parse_tags

if TYPE_CHECKING:
    from services.client import HfBus, Stream

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
    if args.command is _dev and "HFBUS_LOG_FORMAT" not in os.environ:
        settings = replace(settings, log_format="text")  # a person reads `make run`'s log; pipelines read JSON
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as err:
        parser.exit(2, f"hfbus: {err}\n")
    from services.client import BusTimeout, BusUnreachable

    try:
        args.command(args, settings)
    except KeyboardInterrupt:
        pass
    except (BusUnreachable, BusTimeout) as err:
        # A person at a terminal: the reason in one line, not a traceback.
        sys.stderr.write(f"hfbus: {err}\n")
        sys.exit(1)


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
    router.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a container")
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

    embed = commands.add_parser("embed", help="embeddings of one or more texts (prints JSON vectors)")
    embed.add_argument("texts", nargs="+")
    embed.set_defaults(command=_publish, tag="vectorize")

    media_commands = [
        ("image", "text2pic", "generate an image from a prompt", ("prompt",)),
        ("video", "text2vid", "generate a video from a prompt (a queued job: shows progress)", ("prompt",)),
        ("edit", "pic2pic", "edit an image (file or https URL) with a prompt", ("image", "prompt")),
        ("animate", "pic2vid", "animate an image (file or https URL) into a video", ("image", "prompt")),
        ("transcribe", "sound2text", "transcribe an audio file or https URL", ("audio",)),
        ("speak", "text2sound", "speak a text into an audio file", ("text",)),
    ]
    for name, tag, text, positionals in media_commands:
        command = commands.add_parser(name, help=text)
        for positional in positionals:
            command.add_argument(positional, nargs="?" if positional == "prompt" and tag == "pic2vid" else None)
        command.add_argument("-o", "--output", help="where to write the media (default: <tag>-<id>.<ext>)")
        command.set_defaults(command=_publish, tag=tag)
    for sub in commands.choices.values():
        if sub.get_default("command") is _publish:
            sub.add_argument("--model")
            sub.add_argument("--provider", help="pin a provider, e.g. fal-ai")

    models = commands.add_parser("models", help="list the model catalog")
    models.add_argument("--tag")
    models.set_defaults(command=_models)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> None:
    from services.consumer.app import App, tune_collector

    if settings.hf_token is None:
        logger.warning("no HuggingFace token (HUGGINGFACE_API_KEY or HF_TOKEN): the router will answer 401")
    tune_collector()
    anyio.run(lambda: App(settings).run(handle_signals=True), backend_options=_loop_options())


def _dev(args: argparse.Namespace, settings: Settings) -> None:
    from services.bus import natsserver
    from services.consumer.app import App
    from services.dev.fake_router import FakeRouter, serve

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
            url = f"http://127.0.0.1:{port}"
            # The simulated router is also the Hub and the media CDN, on loopback over http.
            settings = replace(
                settings,
                router_url=url,
                hub_url=url,
                media_allow_hosts=frozenset({"127.0.0.1"}),
                hf_token=_offline_secret(),
            )
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
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix, **credential_options(settings)) as bus:
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


def _publish(args: argparse.Namespace, settings: Settings) -> None:
    """Every non-chat publisher command: send, show progress on stderr, print or save the result."""
    from schemas.audio import TranscriptResult
    from schemas.media import MediaResult
    from schemas.vectorize import VectorizeResult
    from services.client import HfBus, RequestFailed

    def show_progress(progress: Progress) -> None:
        where = f", queue position {progress.queue_position}" if progress.queue_position is not None else ""
        sys.stderr.write(f"\r{progress.status}{where} ({progress.elapsed_s:.1f}s)   ")

    async def publish() -> int:
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix, **credential_options(settings)) as bus:
            stream = _start(bus, args, show_progress)
            try:
                result = await stream.result()
            except RequestFailed as failed:
                sys.stderr.write(f"\nerror {failed.error.code}: {failed.error.message}\n")
                return 1
            sys.stderr.write("\r")
            if isinstance(result, VectorizeResult):
                sys.stdout.write(msgspec.json.encode(result.vectors).decode() + "\n")
            elif isinstance(result, TranscriptResult):
                sys.stdout.write(result.text + "\n")
            elif isinstance(result, MediaResult):
                for ref in result.media:
                    data = await bus.download(ref)
                    target = Path(args.output or f"{args.tag}-{stream.id}.{ref.name.rsplit('.', 1)[-1]}")
                    await anyio.Path(target).write_bytes(data)
                    sys.stdout.write(f"{target} ({ref.content_type}, {ref.size} bytes, sha256 {ref.sha256[:12]}…)\n")
            sys.stderr.write(f"[{result.model} via {result.provider}; cost {_usd(result.cost_usd)}]\n")
        return 0

    sys.exit(anyio.run(publish))


def _start(bus: HfBus, args: argparse.Namespace, on_progress: Callable[[Progress], None]) -> Stream[Any]:
    pin = {"provider": args.provider} if args.provider else {}
    match args.tag:
        case "vectorize":
            return bus.embed(args.texts, model=args.model, **pin)
        case "text2pic":
            return bus.image(args.prompt, model=args.model, on_progress=on_progress, **pin)
        case "text2vid":
            return bus.video(args.prompt, model=args.model, on_progress=on_progress, **pin)
        case "pic2pic":
            return bus.edit(_media_arg(args.image), args.prompt, model=args.model, on_progress=on_progress, **pin)
        case "pic2vid":
            return bus.animate(_media_arg(args.image), args.prompt, model=args.model, on_progress=on_progress, **pin)
        case "sound2text":
            return bus.transcribe(_media_arg(args.audio), model=args.model, on_progress=on_progress, **pin)
        case _:
            return bus.speak(args.text, model=args.model, on_progress=on_progress, **pin)


def _media_arg(value: str) -> str | Path:
    return value if value.startswith("https://") else Path(value)


def _usd(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.6f}"


def _models(args: argparse.Namespace, settings: Settings) -> None:
    from services.client import HfBus

    async def show() -> None:
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix, **credential_options(settings)) as bus:
            reply = await bus.models(args.tag)
        for model in reply.models:
            prices = ", ".join(f"{unit} {price}" for unit, price in model.prices.items())
            mark = "*" if model.default else " "
            sys.stdout.write(f"{mark} {model.tag:<10} {model.name:<22} {model.hf_model:<40} {prices}\n")

    anyio.run(show)


def _loop_options() -> dict[str, bool]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}
