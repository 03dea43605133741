"""The `hfbus` command: consumers (`run`, `dev`), the simulated router, and publisher-side commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from services import __version__
from services.cli import keys, processes, publish
from services.observability import configure_logging
from services.settings import Settings, SettingsError, parse_tags


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
    if args.command is processes.dev and "HFBUS_LOG_FORMAT" not in os.environ:
        settings = replace(settings, log_format="text")  # a person reads `make run`'s log; pipelines read JSON
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as err:
        parser.exit(2, f"hfbus: {err}\n")
    from services.client import BusTimeout, BusUnreachable, NoConsumer

    try:
        args.command(args, settings)
    except KeyboardInterrupt:
        pass
    except (BusUnreachable, BusTimeout, NoConsumer) as err:
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
    run.set_defaults(command=processes.run)

    dev = commands.add_parser(
        "dev", help="what `make run` starts: embedded NATS, offline router if no token, consumers"
    )
    dev.add_argument("--tags")
    dev.add_argument("--mode", choices=("core", "durable"))
    dev.add_argument("--nats-port", type=int, default=4222)
    dev.add_argument("--data-dir", default=".hfbus")
    dev.set_defaults(command=processes.dev)

    gateway = commands.add_parser("gateway", help="serve the OpenAI-compatible API on HFBUS_GATEWAY_ADDR")
    gateway.set_defaults(command=processes.gateway)

    router = commands.add_parser("fake-router", help="serve the simulated HF router on 127.0.0.1")
    router.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a container")
    router.add_argument("--port", type=int, default=8089)
    router.add_argument("--pace", type=float, default=0.02, help="seconds between tokens")
    router.set_defaults(command=processes.fake_router)

    chat = commands.add_parser("chat", help="send a chat request and print tokens as they arrive")
    chat.add_argument("prompt")
    chat.add_argument("--model")
    chat.add_argument("--no-stream", action="store_true")
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--image", help="an image URL: sends a vision request to pic2text")
    chat.set_defaults(command=publish.chat)

    embed = commands.add_parser("embed", help="embeddings of one or more texts (prints JSON vectors)")
    embed.add_argument("texts", nargs="+")
    embed.set_defaults(command=publish.task, tag="vectorize")

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
        command.set_defaults(command=publish.task, tag=tag)
    for sub in commands.choices.values():
        if sub.get_default("command") is publish.task:
            sub.add_argument("--model")
            sub.add_argument("--provider", help="pin a provider, e.g. fal-ai")

    models = commands.add_parser("models", help="list the model catalog")
    models.add_argument("--tag")
    models.set_defaults(command=publish.models)

    keys_parser = commands.add_parser("keys", help="the gateway's virtual keys: create, list, revoke")
    key_actions = keys_parser.add_subparsers(required=True, metavar="action")
    create = key_actions.add_parser("create", help="make a key; it is printed once, as the last line of stdout")
    create.add_argument("--name", required=True)
    create.add_argument("--rpm", type=int, help="requests per minute (default: unlimited)")
    create.add_argument("--tpm", type=int, help="tokens per minute (default: unlimited)")
    create.add_argument("--budget-usd", type=float, help="total spend allowed (default: unlimited)")
    create.add_argument("--models", help="comma-separated models the key may use (default: all)")
    create.set_defaults(command=keys.manage, action="create")
    listing = key_actions.add_parser("list", help="every key: limits, spend, created, last used (never the key)")
    listing.set_defaults(command=keys.manage, action="list")
    revoke = key_actions.add_parser("revoke", help="revoke the live key with this name")
    revoke.add_argument("name")
    revoke.set_defaults(command=keys.manage, action="revoke")
    return parser
