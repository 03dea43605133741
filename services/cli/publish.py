"""Publisher commands: `chat`, `embed`, `image`, `video`, `edit`, `animate`, `transcribe`, `speak`, `models`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from schemas import ChatResult, Chunk, Error, Progress
from services.bus.connection import credential_options
from services.settings import Settings

if TYPE_CHECKING:
    from services.client import HfBus, Stream

logger = logging.getLogger("hfbus")


def chat(args: argparse.Namespace, settings: Settings) -> None:
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


def task(args: argparse.Namespace, settings: Settings) -> None:
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


def models(args: argparse.Namespace, settings: Settings) -> None:
    from services.client import HfBus

    async def show() -> None:
        async with HfBus.connect(settings.nats_url, prefix=settings.prefix, **credential_options(settings)) as bus:
            reply = await bus.models(args.tag)
        for model in reply.models:
            prices = ", ".join(f"{unit} {price}" for unit, price in model.prices.items())
            mark = "*" if model.default else " "
            sys.stdout.write(f"{mark} {model.tag:<10} {model.name:<22} {model.hf_model:<40} {prices}\n")

    anyio.run(show)
