"""`python -m bench.per_request [--mode core|durable] [--seconds S]`: a consumer's CPU per one-token chat.

50 clients send one-token chats back to back, through a real nats-server, to one `hfbus run --tags chat`
process on its defaults, which streams them from the fake router (zero delay) in its own process. A one-token
answer makes the per-request work (intake, the request's task and checks, aiohttp's request, the final result,
metrics and the done event, and in durable mode the JetStream delivery, claim and ack) nearly all of the
consumer's CPU: spread over a paced stream's 50 tokens it is one of the parts the README's Performance section
adds up. `BENCH_HFBUS_COMMAND` replaces the `hfbus` command line, as in `make bench` (another build, a
profiler in front).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import loader
from bench.procs import cpu_seconds, free_port, spawn, wait_for_port
from bench.systems import child_env, hfbus_command
from services.bus import natsserver

CLIENTS = 50
WARM_UP_S = 2.0


async def _clients(target: loader.BusTarget, seconds: float) -> tuple[int, int]:
    answered = failed = 0
    ends_at = time.monotonic() + seconds

    async def client() -> None:
        nonlocal answered, failed
        while time.monotonic() < ends_at:
            sample = await target.request(1, loader.now() + 10.0)
            if sample.error is None:
                answered += 1
            else:
                failed += 1

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return answered, failed


async def measure(mode: str, seconds: float) -> None:
    logs = Path(tempfile.mkdtemp(prefix="hfbus-per-request-"))
    server = natsserver.start(logs / "nats")
    router_port, http_port = free_port(), free_port()
    children = []
    try:
        router = spawn(
            "router",
            [sys.executable, "-m", "bench.router", "--port", str(router_port)],
            env=dict(os.environ),
            log_dir=logs,
        )
        children.append(router)
        wait_for_port(router_port, router)
        command = hfbus_command("BENCH_HFBUS_COMMAND")
        env = child_env(
            {
                "NATS_URL": server.url,
                "HF_ROUTER_URL": f"http://127.0.0.1:{router_port}",
                "HUGGINGFACE_API_KEY": loader.TOKEN,
                "HFBUS_LOG_LEVEL": "WARNING",
                "HFBUS_HTTP_ADDR": f"127.0.0.1:{http_port}",
            }
        )
        consumer = spawn("consumer", [*command, "run", "--tags", "chat", "--mode", mode], env=env, log_dir=logs)
        children.append(consumer)
        wait_for_port(http_port, consumer)

        nc = await loader.connect(server.url)
        try:
            target = loader.BusTarget("hfbus", nc, "hfbus", durable=mode == "durable")
            await target.start()
            await _clients(target, WARM_UP_S)
            cpu_before, started = cpu_seconds(consumer.pid), time.monotonic()
            answered, failed = await _clients(target, seconds)
            elapsed, cpu = time.monotonic() - started, cpu_seconds(consumer.pid) - cpu_before
        finally:
            await nc.close()
    finally:
        for child in reversed(children):
            child.stop()
        server.stop()
    print(
        f"{mode}: {answered} one-token chats in {elapsed:.1f} s ({answered / elapsed:,.0f}/s, {failed} failed);"
        f" consumer CPU {cpu / max(answered, 1) * 1e6:.0f} µs per request at {cpu / elapsed:.2f} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("core", "durable"), default="core")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    asyncio.run(measure(args.mode, args.seconds))


if __name__ == "__main__":
    main()
